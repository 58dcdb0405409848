"""`python -m data_prep DATASET --root SRC --out DIR`: convert a dataset to TFRecords."""

from __future__ import annotations

import argparse
import sys

from data_prep import convert as convert_lib
from data_prep import manifest, synthetic


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Convert a micro-expression dataset to TFRecord shards + dataset.json.")
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")

    def common(p, size):
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--tim", type=int, default=32,
                       help="TIM output length in frames; 0 keeps every frame (default 32)")
        p.add_argument("--size", type=int, default=size,
                       help=f"frame size in pixels, square (default {size})")
        p.add_argument("--encoding", choices=convert_lib.ENCODINGS, default="png")
        p.add_argument("--workers", type=int, default=None,
                       help="parallel processes (default: all CPUs)")
        p.add_argument("--strict", action="store_true",
                       help="exit non-zero if any clip had to be skipped")

    p = sub.add_parser("manifest", help="clips listed in a CSV (path,subject,label[,...])")
    p.add_argument("--root", required=True, help="the manifest CSV file")
    p.add_argument("--classes", default="source",
                   help="class scheme: tlcnn4, source (labels found, sorted) or a,b,c")
    p.add_argument("--name", default="manifest", help="dataset name (subject namespace)")
    p.add_argument("--crop", choices=["none"], default="none",
                   help="frames are used as they are (already cropped faces)")
    common(p, size=224)

    p = sub.add_parser("synthetic", help="the built-in procedurally drawn dataset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subjects", type=int, default=12)
    p.add_argument("--clips-per-class", type=int, default=2)
    p.add_argument("--keep-raw", action="store_true",
                   help="keep the generated frame folders and manifest in OUT/raw")
    common(p, size=128)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        options = convert_lib.ConvertOptions(num_frames=args.tim, size=args.size,
                                             encoding=args.encoding, workers=args.workers)
        if args.dataset == "manifest":
            info = manifest.convert_manifest(args.root, args.out, classes=args.classes,
                                             name=args.name, options=options)
        else:
            info = synthetic.build(args.out, seed=args.seed, num_subjects=args.subjects,
                                   clips_per_class=args.clips_per_class, options=options,
                                   keep_raw=args.keep_raw)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(convert_lib.summary(info, args.out))
    if args.strict and info["errors"]:
        print(f"error: --strict: {len(info['errors'])} clip(s) skipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
