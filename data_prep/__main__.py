"""`python -m data_prep DATASET --root SRC --out DIR`: convert a dataset to TFRecords."""

from __future__ import annotations

import argparse
import sys

from data_prep import classes as schemes
from data_prep import clip, convert, databases, flow, manifest, synthetic
from tfmer import cli

DATABASES = {
    "casme2": "CASME II (raw, selected or cropped release) with its coding spreadsheet",
    "samm": "SAMM with SAMM_Micro_FACS_Codes*.xlsx",
    "smic": "SMIC (HS, VIS or NIR); labels from the folders",
    "casme": "CASME (I) with its coding spreadsheet, sections A and B",
    "casme3": "CAS(ME)^3 part A with its label spreadsheet",
    "megc2019": "the MEGC 2019 composite (the official 442 clips of SMIC, CASME II, SAMM)",
    "expression": "still expression images (emotion folders, KDEF/RaFD names, FER2013 CSV)",
}
DEFAULT_CLASSES = {"smic": "smic4", "megc2019": "megc3"}
SCHEME_HELP = ", ".join(sorted(schemes.SCHEMES)) + ", source (the database's emotions) or a,b,c"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Convert a micro-expression dataset to TFRecord shards + dataset.json.")
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")

    def common(p, size, crop_default, classes=None):
        p.add_argument("--out", required=True, help="output folder")
        if classes is not None:
            p.add_argument("--classes", default=classes,
                           help=f"class scheme (default {classes}): {SCHEME_HELP}")
        p.add_argument("--tim", type=int, default=32,
                       help="TIM output length in frames; 0 keeps every frame (default 32)")
        p.add_argument("--size", type=int, default=size,
                       help=f"frame size in pixels, square (default {size})")
        p.add_argument("--crop", choices=clip.CROPS, default=crop_default,
                       help="detect: crop each clip to the face found on its first frame; "
                            "none: frames are faces already (default: "
                            f"{crop_default or 'the release'})")
        p.add_argument("--align", action="store_true",
                       help="with --crop detect, rotate so the eyes are level")
        p.add_argument("--margin", type=float, default=clip.ConvertOptions.margin,
                       help="margin around the landmarks' box, a fraction of its side "
                            "(default %(default)s)")
        p.add_argument("--encoding", choices=clip.ENCODINGS, default="png")
        p.add_argument("--flow", choices=flow.METHODS + ("none",),
                       default=clip.ConvertOptions.flow,
                       help="onset -> apex optical flow and strain stored with each clip "
                            "(default %(default)s; none: no motion)")
        p.add_argument("--apex", choices=flow.APEX_RULES, default=clip.ConvertOptions.apex,
                       help="for clips whose release codes no apex (SMIC): the middle frame, "
                            "or detect the frame that differs most from the onset "
                            "(default %(default)s)")
        p.add_argument("--clips-per-shard", type=int, default=None,
                       help="clips per TFRecord shard (default 32; 1024 for still images)")
        p.add_argument("--workers", type=int, default=None,
                       help="parallel processes (default: all CPUs)")
        p.add_argument("--strict", action="store_true",
                       help="exit non-zero if any clip had to be skipped")

    for name, help_text in DATABASES.items():
        p = sub.add_parser(name, help=help_text)
        if name == "megc2019":
            p.add_argument("--root", required=True, action="append", metavar="DB=DIR",
                           help="a source database's root, once each: --root casme2=DIR "
                                "--root samm=DIR --root smic=DIR")
        else:
            p.add_argument("--root", required=True,
                           help="the FER2013 CSV or a folder of images" if name == "expression"
                           else "the folder the publisher's archive unpacks to")
        if name in ("casme2", "samm", "casme", "casme3"):
            p.add_argument("--coding", default=None,
                           help="the coding spreadsheet (default: found under --root)")
        if name in ("smic", "megc2019"):
            p.add_argument("--part", default="HS", choices=["HS", "VIS", "NIR"],
                           help="SMIC camera (default HS)" if name == "smic"
                           else "SMIC camera (MEGC 2019 uses HS)")
        common(p, size=224, crop_default=None, classes=DEFAULT_CLASSES.get(name, "source"))

    p = sub.add_parser("manifest", help="clips listed in a CSV (path,subject,label[,...])")
    p.add_argument("--root", required=True, help="the manifest CSV file")
    p.add_argument("--name", default="manifest", help="dataset name (subject namespace)")
    common(p, size=224, crop_default="none", classes="source")

    p = sub.add_parser("synthetic", help="the built-in procedurally drawn dataset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subjects", type=int, default=12)
    p.add_argument("--clips-per-class", type=int, default=2)
    p.add_argument("--keep-raw", action="store_true",
                   help="keep the generated frame folders and manifest in OUT/raw")
    common(p, size=128, crop_default="none")
    return parser


def _roots(values) -> dict:
    """`["casme2=DIR", ...]` -> `{"casme2": DIR, ...}` for megc2019."""
    roots = {}
    for value in values:
        database, sep, folder = value.partition("=")
        if not sep or not folder:
            raise ValueError(f"--root {value!r} must be DB=DIR, e.g. --root casme2=/data/CASME2")
        roots[database] = folder
    return roots


def _convert(args, options):
    if args.dataset == "manifest":
        return manifest.convert_manifest(args.root, args.out, classes=args.classes,
                                         name=args.name, options=options)
    if args.dataset == "synthetic":
        return synthetic.build(args.out, seed=args.seed, num_subjects=args.subjects,
                               clips_per_class=args.clips_per_class, options=options,
                               keep_raw=args.keep_raw)
    reader_options = {k: getattr(args, k) for k in ("coding", "part") if hasattr(args, k)}
    root = _roots(args.root) if args.dataset == "megc2019" else args.root
    return databases.convert_database(args.dataset, root, args.out, classes=args.classes,
                                      options=options, **reader_options)


def _run(args) -> int:
    per_shard = args.clips_per_shard or (1024 if args.dataset == "expression" else 32)
    options = clip.ConvertOptions(
        num_frames=args.tim, size=args.size, encoding=args.encoding, crop=args.crop,
        align=args.align, margin=args.margin, flow=args.flow, apex=args.apex,
        clips_per_shard=per_shard, workers=args.workers)
    info = _convert(args, options)
    print(convert.summary(info, args.out))
    if args.strict and info["errors"]:
        print(f"error: --strict: {len(info['errors'])} clip(s) skipped", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    return cli.run(_run, _parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
