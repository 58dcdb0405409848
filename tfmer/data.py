"""The `tf.data` input pipeline over converted datasets (`python -m data_prep ... --out DIR`).

Stages, each a plain function that works eagerly and inside `Dataset.map`:
read (shards interleaved) -> parse (`tfmer.features.parse`) -> select subjects ->
[balance classes (`balanced_clips`)] -> sample in time (`random_window`, `center_window`) ->
decode (`decode_frames`) -> resize (`resize_frames`) -> augment (`random_flip`,
`random_rotation`) -> batch -> prefetch.

Frames are decoded only after temporal sampling, so a training sample decodes N frames, not
the whole clip. Clips stream from the shards; nothing holds a whole dataset in memory.

Motion models (`data.input: flow`) read instead each clip's onset -> apex flow and strain,
stored by the converter (`flow/uvs`), without parsing the frames: read -> parse context ->
select subjects -> `flow_input` (resize, rescale the displacements) -> cache -> shuffle ->
augment (`random_flow_flip`) -> batch (`flow_train_dataset`, `flow_eval_dataset`).

STRCN-A (`data.input: appearance`) reads each clip's appearance matrix, the masked facial
pixels of every frame as its columns (`tfmer.appearance`): read -> parse -> select subjects
-> decode all frames -> grey at the mask size -> matrix -> cache -> shuffle -> temporal
jittering (training) -> batch (`appearance_train_dataset`, `appearance_eval_dataset`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import numpy as np
import tensorflow as tf

from tfmer import appearance, features, records, tfrecord

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_CLIPS = 64  # encoded clips held for shuffling: bounded, whatever the dataset size
SHUFFLE_COPIES = 512  # jittered appearance matrices held for shuffling (~0.5 MB each)


def pipeline_options() -> tf.data.Options:
    """Input work on a private pool of a quarter of the cores (at least one thread), with
    the autotuner off.

    With tf.data's default pool and autotuning on a 2-core CPU, input threads preempt the
    training step's own threads and cost a quarter to a third of the training speed
    (BENCHMARKS.md); decoding the few sampled frames of a batch needs far less than a
    quarter of the machine.
    """
    options = tf.data.Options()
    options.threading.private_threadpool_size = max(1, (os.cpu_count() or 1) // 4)
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return options


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What `dataset.json` says about a converted dataset, or about several converted
    datasets read as one (`load_info("DIR1,DIR2")`).

    Attributes:
        path: the dataset folder (for several, the folders as given, comma-separated).
        name: dataset name.
        classes: the fixed, ordered class list (labels index into it).
        num_frames: frames per clip (TIM length), or None when clips differ in length.
        height, width, channels: stored frame size.
        subjects: namespaced subject ids (`dataset/subject`), sorted.
        shards: shard file paths.
        clips: per-clip summaries (`id`, `subject`, `label`, `num_frames`, ...).
        raw: the whole `dataset.json` (for several, the fields they share, the first
            one's `tim` and conversion `settings`, the merged `name`, `clips`, `subjects`
            and the folders under `combined`).
        paths: the dataset folders.
        unit: what `subjects` and every `subjects` argument name: `subject` ids, or in
            the view `by_clip` makes, `clip` ids.
        relabel: `((clip id, class index), ...)`: labels that replace the stored ones
            wherever clips are read (`relabelled`); empty for the stored labels.
        namespaced: clip ids carry their database, `database/...` (datasets read as one:
            CASME and CASME II both have a `sub01/EP02_01f`), also where `read_clips`
            parses them.
    """

    path: pathlib.Path
    name: str
    classes: tuple
    num_frames: int | None
    height: int
    width: int
    channels: int
    subjects: tuple
    shards: tuple
    clips: tuple
    raw: dict
    paths: tuple = ()
    unit: str = "subject"
    relabel: tuple = ()
    namespaced: bool = False

    def clips_of(self, subjects) -> list[dict]:
        """The clip summaries of the given subjects (of the given clips in a `by_clip` view)."""
        subjects, key = set(subjects), "id" if self.unit == "clip" else "subject"
        return [c for c in self.clips if c[key] in subjects]

    def by_clip(self) -> "DatasetInfo":
        """The dataset seen clip by clip: its `subjects` are the clip ids, so folds made over
        them split clips, not subjects (`--protocol kfold5-clips`, which leaks subjects)."""
        return dataclasses.replace(self, subjects=tuple(sorted(c["id"] for c in self.clips)),
                                   unit="clip")

    def relabelled(self, labels: dict) -> "DatasetInfo":
        """The dataset with the given clips' labels replaced, in the clip summaries and in
        every clip `read_clips` parses (so in every training pipeline): the label-permutation
        check trains on such a view.

        Args:
            labels: `{clip id: class index}`; clips not named keep their labels.

        Raises:
            ValueError: a clip id the dataset does not hold, or an index out of range.
        """
        known = {c["id"] for c in self.clips}
        for clip_id, index in labels.items():
            if clip_id not in known or not 0 <= index < len(self.classes):
                raise ValueError(f"relabel {clip_id} -> {index}: not a clip of {self.path} "
                                 f"and a class index in 0..{len(self.classes) - 1}")
        merged = {**dict(self.relabel), **labels}
        return dataclasses.replace(
            self, relabel=tuple(sorted(merged.items())),
            clips=tuple({**c, "label": self.classes[merged[c["id"]]]} if c["id"] in merged
                        else c for c in self.clips))


COMBINED_FIELDS = ("classes", "num_frames", "height", "width", "channels", "encoding")
"""What datasets read as one must share (`load_info`)."""


def load_info(data_dir) -> DatasetInfo:
    """Reads `DIR/dataset.json`; `"DIR1,DIR2,..."` reads several converted datasets as one
    (e.g. TLCNN's SMIC + CASME + CASME II): their clips and shards together, subjects kept
    namespaced by database, so a run on them reports each database's figures and can run
    the cross-database protocols.

    Raises:
        FileNotFoundError: no `dataset.json` (names the folder and how to make one).
        ValueError: a shard it lists is missing; datasets read as one that differ in a
            field of `COMBINED_FIELDS` (naming the field and both values), or share a
            database name or a subject (one database read twice). Their clip ids are
            namespaced by database (`namespaced_id`), so they never clash.
    """
    parts = [part.strip() for part in str(data_dir).split(",") if part.strip()]
    if len(parts) > 1:
        return _combined([_load_one(part) for part in parts], str(data_dir))
    return _load_one(data_dir)


def _load_one(data_dir) -> DatasetInfo:
    path = pathlib.Path(data_dir)
    meta = path / "dataset.json"
    if not meta.is_file():
        raise FileNotFoundError(
            f"{path} holds no dataset.json: it is not a converted dataset; make one with "
            f"`python -m data_prep DATASET --root SRC --out {path}`")
    raw = json.loads(meta.read_text(encoding="utf-8"))
    shards = tuple(path / s["file"] for s in raw["shards"])
    missing = [str(s) for s in shards if not s.is_file()]
    if missing:
        raise ValueError(f"{meta} lists shard(s) that do not exist: {', '.join(missing)}")
    return DatasetInfo(path=path, name=raw["name"], classes=tuple(raw["classes"]),
                       num_frames=raw["num_frames"], height=raw["height"], width=raw["width"],
                       channels=raw["channels"], subjects=tuple(raw["subjects"]),
                       shards=shards, clips=tuple(raw["clips"]), raw=raw, paths=(path,))


def _combined(infos: list, given: str) -> DatasetInfo:
    """Several datasets read as one (`load_info`)."""
    first = infos[0]
    for other in infos[1:]:
        for field in COMBINED_FIELDS:
            if first.raw.get(field) != other.raw.get(field):
                raise ValueError(f"{first.path} and {other.path} cannot be read as one: "
                                 f"{field} {first.raw.get(field)!r} and "
                                 f"{other.raw.get(field)!r}; convert them alike")
    databases = [info.name for info in infos]
    repeated = sorted({d for d in databases if databases.count(d) > 1})
    if repeated:
        raise ValueError(f"{given}: database {repeated[0]} appears twice; its subjects would "
                         f"mix (convert each database under its own name)")
    owner = {}
    for info in infos:
        for subject in info.subjects:
            if subject in owner:
                raise ValueError(
                    f"{given}: subject {subject} is in {owner[subject]} and in {info.path}: "
                    f"one database is read twice (the MEGC 2019 composite holds CASME II, "
                    f"SAMM and SMIC-HS already)")
            owner[subject] = info.path
    clips = [{**clip, "id": namespaced_id(clip["id"], clip["subject"])}
             for info in infos for clip in info.clips]
    name = "+".join(databases)
    subjects = tuple(sorted(s for info in infos for s in info.subjects))
    # What the datasets share, and the merged lists; not one dataset's shards or counts.
    raw = {**{key: first.raw.get(key) for key in COMBINED_FIELDS + ("tim", "settings")},
           "name": name, "clips": clips, "subjects": list(subjects),
           "combined": [str(info.path) for info in infos]}
    return DatasetInfo(path=pathlib.Path(given), name=name, classes=first.classes,
                       num_frames=first.num_frames, height=first.height, width=first.width,
                       channels=first.channels, subjects=subjects,
                       shards=tuple(s for info in infos for s in info.shards),
                       clips=tuple(clips), raw=raw,
                       paths=tuple(info.path for info in infos), namespaced=True)


def records_dataset(folder, clip_records, classes, name: str = "records") -> DatasetInfo:
    """Clip records held in memory (`tfmer.records.ClipRecord`s, e.g. from
    `data_prep.clip.convert_clip`) as a dataset that every reader of this module takes:
    written to one shard in `folder`, with the clip summaries the readers use (`id`,
    `subject`, `label`, `num_frames`, `landmarks`, `flow`, as the converter's
    `dataset.json` lists them); no `dataset.json` is written.

    Args:
        folder: an existing folder (a temporary one: the caller removes it).
        clip_records: the records, in the order the readers give them back.
        classes: the class list their `label` indexes.

    Raises:
        ValueError: two records share a clip id, or the records differ in frame size.
    """
    clip_records = list(clip_records)
    ids = [record.clip_id for record in clip_records]
    sizes = {(record.height, record.width, record.channels) for record in clip_records}
    if len(set(ids)) != len(ids) or len(sizes) != 1:
        raise ValueError(f"records_dataset: {len(clip_records)} records need distinct clip "
                         f"ids and one frame size; got ids {ids} and sizes {sorted(sizes)}")
    shard = pathlib.Path(folder) / f"{name}-00000-of-00001.tfrecord"
    with tfrecord.TFRecordWriter(shard) as writer:
        for record in clip_records:
            writer.write(records.encode(record))
    clips = []
    for record in clip_records:
        clips.append({"id": record.clip_id, "subject": record.subject,
                      "label": record.label_name, "num_frames": len(record.frames),
                      "onset": record.onset, "apex": record.apex, "offset": record.offset,
                      "fps": record.fps, "landmarks": record.landmarks is not None})
        if record.motion is not None:
            clips[-1]["flow"] = {"method": record.motion.method,
                                 "from": record.motion.source_from,
                                 "to": record.motion.source_to,
                                 "apex_source": record.motion.apex_source}
    (height, width, channels), = sizes
    lengths = {len(record.frames) for record in clip_records}
    subjects = tuple(sorted({record.subject for record in clip_records}))
    return DatasetInfo(path=pathlib.Path(folder), name=name, classes=tuple(classes),
                       num_frames=lengths.pop() if len(lengths) == 1 else None,
                       height=height, width=width, channels=channels, subjects=subjects,
                       shards=(shard,), clips=tuple(clips),
                       raw={"name": name, "classes": list(classes), "clips": clips},
                       paths=(pathlib.Path(folder),))


def namespaced_id(clip_id: str, subject: str) -> str:
    """A clip id with its database in front (`database/...`, the namespace of its subject)
    unless it has it already (the MEGC 2019 composite's ids)."""
    database = subject.split("/", 1)[0]
    return clip_id if clip_id.startswith(database + "/") else f"{database}/{clip_id}"


def _namespace(clip):
    """`read_clips`: `clip/id` as `namespaced_id` makes it."""
    prefix = tf.strings.split(clip["clip/subject"], "/", maxsplit=1)[0] + "/"
    clip_id = clip["clip/id"]
    has = tf.equal(tf.strings.substr(clip_id, 0, tf.strings.length(prefix)), prefix)
    return {**clip, "clip/id": tf.where(has, clip_id, prefix + clip_id)}


def read_clips(info: DatasetInfo, subjects=None, *, clips=None, shuffle_files=False,
               seed=None, frames: bool = True):
    """Parsed clips of the given subjects (all when None), frames still encoded.

    Args:
        subjects: subject ids (clip ids in a `DatasetInfo.by_clip` view).
        clips: clip ids to keep as well (None: every clip of `subjects`); splits by clip
            (the still images of an expression set, `tfmer.training.StagedTrainer`) use it.
        frames: parse the encoded frames too (`tfmer.features.parse`); False for the
            context alone.

    Returns:
        A `tf.data.Dataset` of `tfmer.features.parse` dicts.
    """
    files = tf.data.Dataset.from_tensor_slices([str(s) for s in info.shards])
    if shuffle_files:
        files = files.shuffle(len(info.shards), seed=seed)
    dataset = files.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(info.shards)),
                               num_parallel_calls=AUTOTUNE, deterministic=not shuffle_files)
    dataset = dataset.map(lambda serialized: features.parse(serialized, frames),
                          num_parallel_calls=AUTOTUNE, deterministic=not shuffle_files)
    if info.namespaced:
        dataset = dataset.map(_namespace, num_parallel_calls=AUTOTUNE,
                              deterministic=not shuffle_files)
    if info.relabel:
        dataset = dataset.map(_relabeller(info.relabel), num_parallel_calls=AUTOTUNE,
                              deterministic=not shuffle_files)
    if subjects is not None:
        wanted = membership(subjects)
        key = "clip/id" if info.unit == "clip" else "clip/subject"
        dataset = dataset.filter(lambda clip: wanted(clip[key]))
    if clips is not None:
        kept = membership(clips)
        dataset = dataset.filter(lambda clip: kept(clip["clip/id"]))
    return dataset


def _relabeller(pairs):
    """`clip -> clip` with `clip/label` replaced for the clips `pairs` names (`relabelled`)."""
    ids, labels = zip(*pairs)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(ids, tf.string),
                                            tf.constant(labels, tf.int64)), default_value=-1)

    def relabel(clip):
        found = table.lookup(clip["clip/id"])
        stored = clip["clip/label"]
        return {**clip, "clip/label": tf.where(found >= 0, tf.cast(found, stored.dtype), stored)}
    return relabel


def membership(keys):
    """`key -> bool tensor`: whether a string is one of `keys`, by a hash table (constant
    time per clip however many keys: a split of a 30 000-image expression set names them
    all)."""
    keys = sorted(set(keys))
    if not keys:  # a table cannot be empty
        return lambda key: tf.fill(tf.shape(key), False)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string),
                                            tf.ones([len(keys)], tf.int32)), default_value=0)
    return lambda key: table.lookup(key) > 0


def window_indices(num_frames, length: int, start):
    """Indices of `length` consecutive frames from `start`; clips shorter than `length`
    repeat their last frame. Returns int32 `[length]`."""
    indices = tf.range(length, dtype=tf.int32) + tf.cast(start, tf.int32)
    return tf.minimum(indices, tf.cast(num_frames, tf.int32) - 1)


def random_window(encoded, length: int, seed=None):
    """A random window of `length` consecutive encoded frames (training).

    Args:
        encoded: `[T]` string tensor of encoded frames.
        length: window length N.
    Returns:
        `[length]` string tensor.
    """
    num_frames = tf.shape(encoded)[0]
    last_start = tf.maximum(num_frames - length, 0)
    start = tf.random.uniform([], 0, last_start + 1, dtype=tf.int32, seed=seed)
    return tf.gather(encoded, window_indices(num_frames, length, start))


def center_window(encoded, length: int):
    """The central window of `length` consecutive encoded frames (deterministic)."""
    num_frames = tf.shape(encoded)[0]
    start = tf.maximum(num_frames - length, 0) // 2
    return tf.gather(encoded, window_indices(num_frames, length, start))


def decode_frames(encoded, channels: int = 3):
    """Decodes PNG/JPEG frames: `[T]` string -> uint8 `[T, H, W, channels]`."""
    return tf.map_fn(
        lambda frame: tf.io.decode_image(frame, channels=channels, expand_animations=False),
        encoded, fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))


def resize_frames(frames, size: int):
    """uint8 `[T, H, W, C]` -> float32 `[T, size, size, C]` in 0..255 (area-averaged when
    shrinking, so sub-pixel motion survives)."""
    frames = tf.cast(frames, tf.float32)
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    return tf.image.resize(frames, [size, size], method="area", antialias=True)


def random_flip(frames, seed=None):
    """Flips a whole clip `[T, H, W, C]` left-right with probability 0.5."""
    flip = tf.random.uniform([], seed=seed) < 0.5
    return tf.cond(flip, lambda: tf.reverse(frames, axis=[2]), lambda: frames)


def random_rotation(frames, max_degrees: float, seed=None):
    """Rotates a whole clip `[T, H, W, C]` (float32) about the frame centre by one angle
    drawn uniformly from [-max_degrees, max_degrees]; bilinear, borders reflected."""
    angle = tf.random.uniform([], -max_degrees, max_degrees, seed=seed) * (np.pi / 180)
    height = tf.cast(tf.shape(frames)[1], tf.float32)
    width = tf.cast(tf.shape(frames)[2], tf.float32)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) reads input (cos dx - sin dy + cx, sin dx + cos dy + cy).
    transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                          sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=frames, transforms=transform[None], output_shape=tf.shape(frames)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")


def flow_input(uvs, height, width, image_size: int):
    """A clip's stored onset -> apex motion at the model's input size.

    Args:
        uvs: float32 `[H * W * 3]`, the record's `flow/uvs` (row-major `[H, W, 3]`: u, v in
            pixels of the stored frames, strain).
        height, width: the stored frame size H, W (`image/height`, `image/width`).
        image_size: the model's input size S.

    Returns:
        float32 `[S, S, 3]`: resized bilinearly (antialiased when shrinking), u multiplied
        by S / W and v by S / H so that they stay displacements in pixels of the resized
        image; the strain is left as it is (a ratio of displacement to distance, which a
        change of scale does not change).
    """
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    flow = tf.reshape(uvs, tf.stack([height, width, 3]))
    flow = tf.image.resize(flow, [image_size, image_size], method="bilinear", antialias=True)
    scale = tf.stack([image_size / tf.cast(width, tf.float32),
                      image_size / tf.cast(height, tf.float32), 1.0])
    return flow * scale


def random_flow_flip(flow, seed=None):
    """Flips a motion map `[S, S, 3]` left-right with probability 0.5: the map is mirrored
    and its horizontal displacement u changes sign (v and the strain do not)."""
    flip = tf.random.uniform([], seed=seed) < 0.5
    return tf.cond(flip, lambda: tf.reverse(flow, axis=[1]) * tf.constant([-1.0, 1.0, 1.0]),
                   lambda: flow)


def flow_clips(info: DatasetInfo, subjects, *, image_size: int, clips=None,
               shuffle_files=False, seed=None):
    """Each clip's motion at `image_size` (`flow_input`), its label and id; the frames are
    not parsed.

    Raises (when iterated):
        InvalidArgumentError: a record without motion (converted with `--flow none`);
            `tfmer.training.check_inputs` stops such runs before they start.

    Returns:
        `tf.data.Dataset` of `(flow float32 [S, S, 3], label int32, clip_id string)`.
    """
    def sample(clip):
        flow = flow_input(clip["flow/uvs"], clip["image/height"], clip["image/width"],
                          image_size)
        return flow, tf.cast(clip["clip/label"], tf.int32), clip["clip/id"]

    return read_clips(info, subjects, clips=clips, shuffle_files=shuffle_files, seed=seed,
                      frames=False).map(sample, num_parallel_calls=AUTOTUNE,
                                        deterministic=not shuffle_files)


def cached_passes(samples, count: int, *, repeat: bool = False, seed=None):
    """Passes over `(input, label, clip_id)` samples of one input per clip: the ids dropped,
    the `(input, label)` pairs cached in memory after the first pass and all `count` of
    them shuffled each pass; endless with `repeat`."""
    dataset = samples.map(lambda inputs, label, clip_id: (inputs, label)).cache()
    dataset = dataset.shuffle(max(count, 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.repeat() if repeat else dataset


def flow_train_dataset(info: DatasetInfo, subjects, *, image_size: int, batch_size: int,
                       flip: bool = True, repeat: bool = False, clips=None, seed=None):
    """Training batches of motion maps: every clip once per pass, shuffled, flipped at
    random (`random_flow_flip`).

    The resized maps are cached in memory after the first pass (one `[S, S, 3]` float map
    per clip: 9 KB at 28 px, 600 KB at 224 px), so the hundreds of epochs of the motion
    methods do not re-read the shards; the whole set is shuffled each pass.

    Args:
        repeat: an endless stream of passes, repeated before batching (every batch full).
        clips: clip ids to keep as well (`read_clips`).

    Returns:
        `tf.data.Dataset` of `(flow float32 [B, S, S, 3], labels int32 [B])`.
    """
    count = len(clips) if clips is not None else len(info.clips_of(subjects))
    dataset = flow_clips(info, subjects, image_size=image_size, clips=clips,
                         shuffle_files=True, seed=seed)
    dataset = cached_passes(dataset, count, repeat=repeat, seed=seed)
    if flip:
        dataset = dataset.map(lambda flow, label: (random_flow_flip(flow), label),
                              num_parallel_calls=AUTOTUNE, deterministic=False)
    return dataset.batch(batch_size).prefetch(2).with_options(pipeline_options())


def flow_eval_dataset(info: DatasetInfo, subjects, *, image_size: int, batch_size: int = 1,
                      clips=None):
    """Deterministic evaluation batches of motion maps in shard order.

    Returns:
        `tf.data.Dataset` of `(flow float32 [B, S, S, 3], labels int32 [B], clip_ids
        string [B])`.
    """
    dataset = flow_clips(info, subjects, image_size=image_size, clips=clips)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def _float_frames(clip, info: DatasetInfo):
    """A parsed clip's frames decoded, float32 `[T, H, W, C]` 0..255 (cast from uint8
    here: a uint8 -> float64 cast logs a oneDNN fallback line on some CPUs)."""
    return tf.cast(decode_frames(clip["image/encoded"], info.channels), tf.float32)


def appearance_clips(info: DatasetInfo, subjects, mask, *, columns: int | None, clips=None,
                     shuffle_files=False, seed=None):
    """Each clip's appearance matrix (`tfmer.appearance.appearance_matrix` of its frames in
    grey at `appearance.MASK_SIZE`), its label and id.

    Args:
        mask: bool `[h, w]` at `appearance.MASK_SIZE`, from training clips only
            (`appearance.appearance_mask`).
        columns: columns of the matrix (frames resampled, bicubic); None keeps the clip's
            T frames.

    Returns:
        `tf.data.Dataset` of `(matrix float32 [P, columns or T], label int32, clip_id)`.
    """
    def sample(clip):
        grey = appearance.grey_small(_float_frames(clip, info))
        matrix = appearance.appearance_matrix(grey, mask, columns)
        return matrix, tf.cast(clip["clip/label"], tf.int32), clip["clip/id"]

    return read_clips(info, subjects, clips=clips, shuffle_files=shuffle_files,
                      seed=seed).map(sample, num_parallel_calls=AUTOTUNE,
                                     deterministic=not shuffle_files)


def appearance_train_dataset(info: DatasetInfo, subjects, mask, *, columns: int,
                             batch_size: int, copies: int, repeat: bool = False, seed=None):
    """Training batches of appearance matrices, with temporal jittering (Xia et al.).

    Each clip's matrix of its T frames is computed once and cached in memory (`[P, T]`
    floats: ~100 KB for 32 frames); every pass, each clip gives `copies` jittered copies
    (`appearance.jittered_copies`: a share of the columns dropped at random, resampled to
    `columns` with one of the interpolation kernels; all `config.JITTER_COPIES` pairs, or
    that many drawn at random), shuffled in a buffer of at most `SHUFFLE_COPIES`. With
    `copies` 0, each clip's matrix resampled to `columns` once per pass.

    Returns:
        `tf.data.Dataset` of `(matrices float32 [B, P, columns, 1], labels int32 [B])`.
    """
    count = len(info.clips_of(subjects))
    dataset = appearance_clips(info, subjects, mask, columns=None if copies else columns,
                               shuffle_files=True, seed=seed)
    dataset = cached_passes(dataset, count, repeat=repeat, seed=seed)
    if copies:
        def jitter(matrix, label):
            jittered = appearance.jittered_copies(matrix, columns=columns)
            if copies < jittered.shape[0]:
                jittered = tf.gather(jittered, tf.random.shuffle(tf.range(jittered.shape[0]))
                                     [:copies])
            return tf.data.Dataset.from_tensor_slices((jittered, tf.fill([copies], label)))

        dataset = dataset.interleave(jitter, cycle_length=2, num_parallel_calls=AUTOTUNE,
                                     deterministic=False)
        dataset = dataset.shuffle(min(max(count, 1) * copies, SHUFFLE_COPIES), seed=seed,
                                  reshuffle_each_iteration=True)
    dataset = dataset.map(lambda matrix, label: (matrix[..., None], label))
    return dataset.batch(batch_size).prefetch(2).with_options(pipeline_options())


def appearance_eval_dataset(info: DatasetInfo, subjects, mask, *, columns: int,
                            batch_size: int = 1, clips=None):
    """Deterministic evaluation batches of appearance matrices (no jittering) in shard
    order: `(matrices float32 [B, P, columns, 1], labels int32 [B], clip_ids [B])`."""
    dataset = appearance_clips(info, subjects, mask, columns=columns, clips=clips)
    dataset = dataset.map(lambda matrix, label, clip_id: (matrix[..., None], label, clip_id))
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def clip_energies(info: DatasetInfo, subjects) -> list:
    """The energy map of every clip of `subjects` (`appearance.clip_energy`, `[h, w]` numpy
    each), the input of `appearance.appearance_mask`."""
    def energy(clip):
        return appearance.clip_energy(appearance.grey_small(_float_frames(clip, info)))

    return [e.numpy() for e in read_clips(info, subjects).map(energy,
                                                               num_parallel_calls=AUTOTUNE)]


def balanced_clips(info: DatasetInfo, subjects, *, seed=None):
    """An endless stream of the subjects' encoded clips, each drawn from a class chosen
    uniformly among the classes the subjects have (Bai & Goecke 2020, Table 1 AugI: every
    class contributes about equally many samples, whatever its clip count).

    One reader per class filters the shards to its class and caches that class's encoded
    clips in memory, then shuffles them (a buffer of at most `SHUFFLE_CLIPS` clips) and
    repeats; `sample_from_datasets` picks among the classes with equal weights. Unlike the
    rest of the pipeline this holds the subjects' encoded clips in memory (PNG frames as
    stored, not decoded: ~100 KB per 224 px frame), once the first pass of each class is
    read: without it, a class of n clips would re-read every shard every n samples.

    Returns:
        An infinite `tf.data.Dataset` of `tfmer.features.parse` dicts.
    """
    present = sorted({info.classes.index(c["label"]) for c in info.clips_of(subjects)})
    if not present:
        raise ValueError(f"{info.path}: no clips of subjects {sorted(subjects)} to balance")
    streams = []
    for label in present:
        clips = read_clips(info, subjects, shuffle_files=True, seed=seed).filter(
            lambda clip, label=label: tf.equal(tf.cast(clip["clip/label"], tf.int32), label))
        streams.append(clips.cache().shuffle(SHUFFLE_CLIPS, seed=seed,
                                             reshuffle_each_iteration=True).repeat())
    return tf.data.Dataset.sample_from_datasets(
        streams, weights=[1 / len(streams)] * len(streams), seed=seed)


def train_dataset(info: DatasetInfo, subjects, *, window: int | None, image_size: int,
                  batch_size: int, flip: bool = True, rotation: float = 0.0,
                  balance_classes: bool = False, samples_per_epoch: int | None = None,
                  repeat: bool = False, clips=None, seed=None):
    """Training batches: shuffled clips, one random window each, flipped (and rotated) at
    random.

    Each pass (epoch) visits every clip of `subjects` once, with a new random window. Clips
    are shuffled by shuffling the shard order, interleaving shards and a buffer of at most
    `SHUFFLE_CLIPS` encoded clips, so memory does not grow with the dataset. With
    `balance_classes`, a pass is instead `samples_per_epoch` samples, each from a clip of a
    class chosen uniformly (`balanced_clips`).

    Args:
        rotation: largest random rotation in degrees (`random_rotation`); 0 for none.
        repeat: an endless stream of passes, repeated before batching so that every batch
            is full (for training by steps, `TrainConfig.steps_per_epoch`).
        clips: clip ids to keep as well (`read_clips`); not with `balance_classes`.

    Returns:
        `tf.data.Dataset` of `(frames float32 [B, N, S, S, C] in 0..255, labels int32 [B])`.
    """
    if balance_classes:
        if clips is not None:
            raise ValueError("train_dataset: balance_classes draws from subjects, not clips")
        if not samples_per_epoch and not repeat:
            raise ValueError("train_dataset: balance_classes needs samples_per_epoch >= 1")
        stream = balanced_clips(info, subjects, seed=seed)
        clips = stream if repeat else stream.take(samples_per_epoch)
    else:
        clips = read_clips(info, subjects, clips=clips, shuffle_files=True, seed=seed)
        clips = clips.shuffle(SHUFFLE_CLIPS, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            clips = clips.repeat()

    def sample(clip):
        encoded = clip["image/encoded"]
        if window:
            encoded = random_window(encoded, window)
        frames = resize_frames(decode_frames(encoded, info.channels), image_size)
        if flip:
            frames = random_flip(frames)
        if rotation:
            frames = random_rotation(frames, rotation)
        return frames, tf.cast(clip["clip/label"], tf.int32)

    dataset = clips.map(sample, num_parallel_calls=AUTOTUNE, deterministic=False)
    return dataset.batch(batch_size).prefetch(2).with_options(pipeline_options())


def eval_dataset(info: DatasetInfo, subjects, *, image_size: int, batch_size: int = 1,
                 window: int | None = None, clips=None):
    """Deterministic evaluation batches in shard order.

    Args:
        window: None yields whole clips (for `tfmer.models.clip_probabilities`, which
            averages sliding windows); a number yields each clip's central window.
        clips: clip ids to keep as well (`read_clips`).

    Returns:
        `tf.data.Dataset` of `(frames float32 [B, T, S, S, C], labels int32 [B],
        clip_ids string [B])`. Clips of different lengths need `batch_size=1`.
    """
    def sample(clip):
        encoded = clip["image/encoded"]
        if window:
            encoded = center_window(encoded, window)
        frames = resize_frames(decode_frames(encoded, info.channels), image_size)
        return frames, tf.cast(clip["clip/label"], tf.int32), clip["clip/id"]

    dataset = read_clips(info, subjects, clips=clips).map(sample, num_parallel_calls=AUTOTUNE)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def predict_clips(score, info: DatasetInfo, subjects, *, image_size: int,
                  batch_size: int = 1, with_windows: bool = False,
                  kind: str = "frames") -> list[dict]:
    """Scores whole clips with `score` (frames `[B, T, S, S, C]`, or with `kind` `flow`
    motion maps `[B, S, S, 3]` -> probabilities `[B, K]`), by `score_batches`.

    Args:
        kind: what the model reads, as `data.input`: `frames` (`eval_dataset`) or `flow`
            (`flow_eval_dataset`).
        with_windows: as `score_batches`.
    """
    batches = (flow_eval_dataset if kind == "flow" else eval_dataset)(
        info, subjects, image_size=image_size, batch_size=batch_size)
    return score_batches(score, info, batches, with_windows=with_windows)


def score_batches(score, info: DatasetInfo, batches, *, with_windows: bool = False) -> list[dict]:
    """Scores evaluation batches `(inputs, labels, clip_ids)` with `score` (inputs ->
    probabilities `[B, K]`).

    Args:
        with_windows: `score` returns `(probabilities [B, K], window probabilities
            [B, W, K])` (`clip_probabilities(..., return_windows=True)`), and each row also
            gets `window_probabilities` (`[W][K]` lists).

    Returns:
        `[{"clip_id", "subject", "y_true", "y_pred", "probabilities"}]` in batch order.
    """
    subject_of = {c["id"]: c["subject"] for c in info.clips}
    rows = []
    for inputs, labels, ids in batches:
        scores = score(inputs)
        probabilities = np.asarray(scores[0] if with_windows else scores)
        windows = np.asarray(scores[1]) if with_windows else [None] * len(probabilities)
        for clip_id, label, p, w in zip(ids.numpy(), labels.numpy(), probabilities, windows):
            clip_id = clip_id.decode("utf-8")
            rows.append({"clip_id": clip_id, "subject": subject_of[clip_id],
                         "y_true": int(label), "y_pred": int(np.argmax(p)),
                         "probabilities": p.tolist()})
            if with_windows:
                rows[-1]["window_probabilities"] = w.tolist()
    return rows
