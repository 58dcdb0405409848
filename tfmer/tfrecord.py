"""TFRecord files of `tf.train.SequenceExample`s, written without TensorFlow.

The converter's main process writes its shards with this module, so it never loads
TensorFlow (seconds of start-up and hundreds of MiB). The bytes are exactly TensorFlow's:

* Messages: the protobuf wire format (https://protobuf.dev/programming-guides/encoding/) of
  the messages of `tensorflow/core/example/example.proto` and `feature.proto` that clip
  records use, as `SerializeToString(deterministic=True)` writes them. Fields go in
  field-number order; a message field the caller sets is written even when empty (an empty
  `FloatList` is the two bytes `12 00` inside its `Feature`); repeated numbers are packed
  (one length-delimited field holding every value; none at all when there are no values);
  each element of a repeated `bytes` field is written, an empty one too; int64 values are
  varints, a negative one taking 10 bytes (two's complement as an unsigned 64-bit number);
  float values are little-endian float32. A `map<string, M>` field is a repeated message,
  one entry per key, each entry holding its key (field 1) and its value (field 2), both
  written even when empty, the entries ordered as the upb runtime under Python's protobuf
  orders them: by key bytes, but a key after the longer keys it is a prefix of
  (`_key_order`).
* Files: the TFRecord framing of `tensorflow/core/lib/io/record_writer.cc` (documented at
  https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details), which
  `tf.io.TFRecordWriter` writes without compression: per record a little-endian `uint64`
  length, the `uint32` masked CRC-32C of those 8 bytes, the data, the masked CRC-32C of the
  data.

`tests/test_tfrecord.py` checks every case above against TensorFlow's own bytes.
"""

from __future__ import annotations

import operator
import os
import struct
from collections.abc import Iterable, Mapping

import google_crc32c
import numpy as np

_LENGTH_DELIMITED = 2
"""Wire type of strings, bytes, messages and packed repeated fields."""

_INT64_RANGE = range(-2**63, 2**63)

_CRC_MASK_DELTA = 0xA282EAD8
"""Added to the rotated CRC (`tensorflow/core/lib/hash/crc32c.h`, `Mask`)."""


def bytes_feature(values: Iterable[bytes]) -> bytes:
    """A `Feature` holding a `BytesList` (field 1), one `value` field (1) per element.

    Args:
        values: the byte strings, empty ones included.

    Returns:
        The serialised `Feature` message.
    """
    return _length_delimited(1, b"".join(_length_delimited(1, value) for value in values))


def float_feature(values) -> bytes:
    """A `Feature` holding a `FloatList` (field 2): `value` (field 1) packed as float32.

    Args:
        values: a flat sequence or 1-D array of numbers, rounded to float32 as a C cast from
            double does (as protobuf does: too large a number becomes infinity).

    Returns:
        The serialised `Feature` message.
    """
    with np.errstate(over="ignore"):
        packed = np.asarray(values, dtype=np.float64).astype("<f4").tobytes()
    return _length_delimited(2, _length_delimited(1, packed) if packed else b"")


def int64_feature(values: Iterable[int]) -> bytes:
    """A `Feature` holding an `Int64List` (field 3): `value` (field 1) packed as varints.

    Args:
        values: integers (Python or NumPy) in the int64 range.

    Returns:
        The serialised `Feature` message.

    Raises:
        TypeError: a value that is not an integer.
        ValueError: a value outside the int64 range.
    """
    packed = b"".join(_varint(_unsigned_int64(value)) for value in values)
    return _length_delimited(3, _length_delimited(1, packed) if packed else b"")


def sequence_example(context: Mapping[str, bytes],
                     feature_lists: Mapping[str, Iterable[bytes]]) -> bytes:
    """A `SequenceExample`: its `context` (field 1) and its `feature_lists` (field 2).

    Both fields are written even when empty, as they are when set on a
    `tf.train.SequenceExample`.

    Args:
        context: feature name -> serialised `Feature` (from `bytes_feature`, `float_feature`
            or `int64_feature`); the `Features` message's `feature` map.
        feature_lists: feature list name -> the serialised `Feature`s of its time steps; the
            `FeatureLists` message's `feature_list` map of `FeatureList`s.

    Returns:
        The serialised `SequenceExample`, deterministic (map entries in `_key_order`).
    """
    lists = {name: b"".join(_length_delimited(1, feature) for feature in features)
             for name, features in feature_lists.items()}
    return _length_delimited(1, _map(context)) + _length_delimited(2, _map(lists))


def masked_crc32c(data: bytes) -> int:
    """The CRC-32C (Castagnoli) of `data`, masked as TFRecord files store it.

    The mask rotates the CRC right by 15 bits and adds 0xA282EAD8 (mod 2**32), so that the
    CRC of data holding CRCs stays well distributed (`tensorflow/core/lib/hash/crc32c.h`).

    Args:
        data: the bytes to checksum.

    Returns:
        The masked CRC as an unsigned 32-bit integer.
    """
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record as a TFRecord file stores it: length, its masked CRC, data, their masked CRC.

    Args:
        record: the record's bytes (e.g. a serialised `SequenceExample`).

    Returns:
        `uint64 length | uint32 masked_crc32c(length) | record | uint32 masked_crc32c(record)`,
        little-endian.
    """
    length = struct.pack("<Q", len(record))
    return (length + struct.pack("<I", masked_crc32c(length)) + record
            + struct.pack("<I", masked_crc32c(record)))


class TFRecordWriter:
    """Writes records to a new uncompressed TFRecord file, like `tf.io.TFRecordWriter`.

    Example:
        with TFRecordWriter(path) as writer:
            writer.write(serialized)
    """

    def __init__(self, path: str | os.PathLike):
        """Creates (or truncates) the file at `path`."""
        self._file = open(path, "wb")

    def write(self, record: bytes) -> None:
        """Appends one record."""
        self._file.write(frame(record))

    def close(self) -> None:
        """Flushes and closes the file."""
        self._file.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _key_order(key: bytes) -> tuple:
    """The sort key of a map entry, in the order deterministic serialisation writes them.

    That is the order of upb, the protobuf runtime under Python's `google.protobuf` (the
    default since protobuf 4.21, and the one `tf.train` messages were serialised with
    before this module): by the keys' bytes, except that a key comes after the longer keys
    it is a prefix of (`clip/label_name`, then `clip/label`; the empty key last). Its
    comparator (`_upb_mapsorter_cmpstr` in `upb/message/map_sorter.c`) negates `memcmp`
    but not the length comparison, and its encoder writes back to front, which reverses
    both (protocolbuffers/protobuf pull request 26621 proposes changing the comparator).
    C++ and pure-Python protobuf put the shorter key first; this order keeps the bytes of
    the records already written, and `tests/test_tfrecord.py` notices if upb changes it.

    Args:
        key: a map key's UTF-8 bytes.

    Returns:
        The bytes as integers followed by 256, which sorts after every byte.
    """
    return (*key, 256)


def _map(entries: Mapping[str, bytes]) -> bytes:
    """A `map<string, M>` field (number 1) of serialised values, in `_key_order`."""
    encoded = sorted(((key.encode("utf-8"), value) for key, value in entries.items()),
                     key=lambda entry: _key_order(entry[0]))
    return b"".join(_length_delimited(1, _length_delimited(1, key) + _length_delimited(2, value))
                    for key, value in encoded)


def _length_delimited(field: int, payload: bytes) -> bytes:
    """Field `field` of wire type 2: tag, payload length (varints), payload."""
    return _varint(field << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _unsigned_int64(value) -> int:
    """An int64 as the unsigned 64-bit number its varint encodes (two's complement)."""
    value = operator.index(value)
    if value not in _INT64_RANGE:
        raise ValueError(f"int64 value out of range: {value}")
    return value % 2**64


def _varint(value: int) -> bytes:
    """Base-128 varint of an unsigned integer: 7 bits a byte, least significant first, the
    high bit set on every byte but the last."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
