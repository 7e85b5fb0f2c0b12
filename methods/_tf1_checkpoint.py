"""Read a TensorFlow-1 checkpoint (tensor-bundle format) in plain Python, without TensorFlow.

A TF1 checkpoint ``prefix`` is a pair of files (the ``.meta`` graph is not needed):

* ``prefix.index``: a LevelDB-format sorted string table (SSTable).  Its first
  key is the empty string (value: ``BundleHeaderProto`` — shard count,
  endianness, version); every other key is a variable name whose value is a
  ``BundleEntryProto`` (dtype, shape, shard id, byte offset, byte size, crc32c).
* ``prefix.data-00000-of-00001`` (one shard; ``-0000k-of-0000n`` in general):
  the raw tensor bytes, stored back to back at the offsets of the index.

Format references: LevelDB's ``table_format.md`` (footer, block handles,
prefix-compressed block entries, restart array, 5-byte block trailer) and
TensorFlow's ``tensor_bundle.proto`` (message fields).  Both are described in
public documentation; this module is an independent implementation of just the
subset a checkpoint written by ``tf.train.Saver`` uses: uncompressed blocks,
non-sliced tensors, numeric dtypes.

The public entry points are :func:`read_checkpoint` (name → numpy array) and
:func:`hwio_to_oihw` (TensorFlow conv kernel layout → PyTorch layout).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionbench.weights import register_weights, weights_path

#: LevelDB table magic number, the last 8 bytes of the file (little-endian).
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two padded block handles (40 bytes) + magic (8 bytes)
_BLOCK_TRAILER = 5  # compression-type byte + masked crc32c

#: TensorFlow ``DataType`` enum values → numpy dtypes (little-endian).
_TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78); ``crc32c(b"123456789") == 0xE3069283``.

    Pure Python, about 0.15 s per MB: only used when asked (``verify_crc=True``).
    """
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that LevelDB and TensorFlow store (rotate right by 15, add 0xA282EAD8)."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


class CheckpointFormatError(ValueError):
    """The file is not a TF1 tensor-bundle checkpoint this reader understands."""


@dataclass(frozen=True)
class TensorEntry:
    """One ``BundleEntryProto``: where a tensor's bytes are and what they are."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointFormatError("varint longer than 10 bytes")


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Protocol-buffer wire format → list of (field number, value); ints for varint/fixed, bytes for length-delimited."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = bytes(buf[pos:pos + length])
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise CheckpointFormatError("truncated protobuf message")
        fields.append((number, value))
    return fields


def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    """A LevelDB BlockHandle (offset, size varints) at ``pos``; returns (offset, size, next position)."""
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Decode the (key, value) entries of one uncompressed SSTable block."""
    if offset + size + _BLOCK_TRAILER > len(table):
        raise CheckpointFormatError("block handle points past the end of the index file")
    if table[offset + size] != 0:
        raise CheckpointFormatError(f"compressed block (type {table[offset + size]}) is not supported")
    block = table[offset:offset + size]
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    if end < 0:
        raise CheckpointFormatError("corrupt block restart array")
    entries: list[tuple[bytes, bytes]] = []
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + value_len > end:
            raise CheckpointFormatError("corrupt block entry")
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos:pos + value_len]))
        pos += value_len
    return entries


def read_sstable(path: str | Path) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of a LevelDB-format table file, in key order."""
    table = Path(path).read_bytes()
    if len(table) < _FOOTER_SIZE:
        raise CheckpointFormatError(f"{path}: too short for an SSTable")
    footer = table[-_FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != _TABLE_MAGIC:
        raise CheckpointFormatError(f"{path}: bad SSTable magic number")
    _, _, pos = _block_handle(footer, 0)  # metaindex block: unused by tensor bundles
    index_offset, index_size, _ = _block_handle(footer, pos)
    entries: list[tuple[bytes, bytes]] = []
    for _, handle in _read_block(table, index_offset, index_size):
        offset, size, _ = _block_handle(handle, 0)
        entries.extend(_read_block(table, offset, size))
    return entries


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for number, value in _proto_fields(buf):
        if number == 2:  # TensorShapeProto.dim
            size = next((v for n, v in _proto_fields(value) if n == 1), 0)  # Dim.size (int64)
            if size >= 1 << 63:
                raise CheckpointFormatError("unknown dimension in a stored tensor")
            dims.append(int(size))
        elif number == 3 and value:  # unknown_rank
            raise CheckpointFormatError("tensor of unknown rank")
    return tuple(dims)


def read_index(path: str | Path) -> tuple[int, dict[str, TensorEntry]]:
    """Parse ``prefix.index``: (number of data shards, name → :class:`TensorEntry`)."""
    entries = read_sstable(path)
    if not entries or entries[0][0] != b"":
        raise CheckpointFormatError(f"{path}: no BundleHeaderProto (empty first key)")
    header = dict(_proto_fields(entries[0][1]))
    num_shards = int(header.get(1, 1))
    if header.get(2, 0) != 0:  # BundleHeaderProto.endianness: 0 = LITTLE
        raise CheckpointFormatError(f"{path}: big-endian bundles are not supported")
    tensors: dict[str, TensorEntry] = {}
    for key, value in entries[1:]:
        name = key.decode("utf-8")
        fields = _proto_fields(value)
        if any(n == 7 for n, _ in fields):
            raise CheckpointFormatError(f"{path}: tensor {name!r} is stored in slices (unsupported)")
        f = dict(fields)
        code = int(f.get(1, 0))
        if code not in _TF_DTYPES:
            raise CheckpointFormatError(f"{path}: tensor {name!r} has unsupported dtype code {code}")
        tensors[name] = TensorEntry(
            name=name,
            dtype=_TF_DTYPES[code],
            shape=_parse_shape(f.get(2, b"")),
            shard_id=int(f.get(3, 0)),
            offset=int(f.get(4, 0)),
            size=int(f.get(5, 0)),
            crc32c=int(f.get(6, 0)),
        )
    return num_shards, tensors


def _data_path(prefix: Path, shard: int, num_shards: int) -> Path:
    return prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}")


def read_checkpoint(prefix: str | Path, *, verify_crc: bool = False) -> dict[str, np.ndarray]:
    """Every tensor of the TF1 checkpoint ``prefix`` as name → numpy array (TensorFlow layout).

    ``prefix`` is the path without extension (``.../model.ckpt``), as passed to
    ``tf.train.Saver.restore``; ``prefix.index`` and its data shard(s) must
    exist.  Conv kernels come back HWIO; use :func:`hwio_to_oihw` for PyTorch.
    Each tensor's byte size is checked against its dtype and shape; with
    ``verify_crc`` also its bytes against the stored masked CRC-32C.
    """
    prefix = Path(prefix)
    index = prefix.with_name(prefix.name + ".index")
    num_shards, entries = read_index(index)
    shards = {s: _data_path(prefix, s, num_shards).read_bytes() for s in sorted({e.shard_id for e in entries.values()})}
    out: dict[str, np.ndarray] = {}
    for name, e in entries.items():
        count = int(np.prod(e.shape, dtype=np.int64))
        if count * e.dtype.itemsize != e.size:
            raise CheckpointFormatError(f"tensor {name!r}: {e.size} bytes do not hold shape {e.shape} of {e.dtype}")
        data = shards[e.shard_id]
        if e.offset + e.size > len(data):
            raise CheckpointFormatError(f"tensor {name!r} lies past the end of data shard {e.shard_id}")
        if verify_crc and masked_crc32c(data[e.offset:e.offset + e.size]) != e.crc32c:
            raise CheckpointFormatError(f"tensor {name!r}: CRC-32C mismatch (corrupt data shard)")
        out[name] = np.frombuffer(data, dtype=e.dtype, count=count, offset=e.offset).reshape(e.shape).copy()
    return out


def hwio_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """TensorFlow conv kernel [H, W, in, out] → PyTorch [out, in, H, W] (contiguous copy).

    ``tf.nn.conv2d`` and ``torch.nn.functional.conv2d`` both compute
    cross-correlation, so no spatial flip is needed.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"expected a 4-D HWIO kernel, got shape {kernel.shape}")
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def convert_tensors(tensors: dict[str, np.ndarray], rename: dict[str, str]) -> dict[str, np.ndarray]:
    """Rename TF variables to PyTorch state-dict keys and turn 4-D HWIO kernels into OIHW.

    ``rename`` must name every checkpoint variable exactly once (each maps to a
    distinct key): a variable left over, or a name that is not in the
    checkpoint, raises ``KeyError`` — no weight may be silently ignored.
    """
    unused = sorted(set(tensors) - set(rename))
    absent = sorted(set(rename) - set(tensors))
    if unused or absent:
        raise KeyError(f"checkpoint/model mismatch: unused variables {unused}, absent variables {absent}")
    if len(set(rename.values())) != len(rename):
        raise KeyError("two checkpoint variables map to the same parameter")
    return {rename[k]: hwio_to_oihw(v) if v.ndim == 4 else np.ascontiguousarray(v) for k, v in tensors.items()}


def load_state_strict(module: "torch.nn.Module", state: dict[str, np.ndarray]) -> None:  # noqa: F821
    """Load numpy ``state`` into ``module`` with strict key *and* shape matching (every parameter filled)."""
    import torch

    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        raise KeyError(f"state mismatch: missing {missing}, unexpected {unexpected}, wrong shapes {wrong}")
    module.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}, strict=True)


def register_checkpoint(name: str, *, base_url: str, prefix: str, method_dir: str, index_sha256: str,
                        data_sha256: str, what: str) -> tuple[str, str]:
    """Declare the two pinned files of a single-shard TF1 checkpoint as weights ``<name>.index`` / ``<name>.data``.

    ``base_url``/``prefix`` name the files ``<base_url>/<prefix>.index`` and
    ``<base_url>/<prefix>.data-00000-of-00001``; ``what`` describes the model.
    Returns the two weight names (list them in ``register_method(..., weights=...)``).
    """
    files = {"index": (f"{prefix}.index", index_sha256, "TF1 checkpoint index (tensor-bundle SSTable)"),
             "data": (f"{prefix}.data-00000-of-00001", data_sha256, "TF1 checkpoint data shard")}
    for part, (filename, sha256, kind) in files.items():
        register_weights(f"{name}.{part}", filename=filename, sha256=sha256, url=f"{base_url}/{filename}",
                         method_dir=method_dir, description=f"{what}: {kind}")
    return f"{name}.index", f"{name}.data"


def checkpoint_index(name: str) -> Path:
    """The cached ``.index`` file of checkpoint ``name`` (its ``.data`` shard must be cached beside it)."""
    index = weights_path(f"{name}.index")
    weights_path(f"{name}.data")
    return index
