"""The plain-Python TF1 checkpoint reader (methods/_tf1_checkpoint.py)."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from fusionbench.methods import _tf1_checkpoint as tf1

SDNET = ("sdnet", "Medical.model-29", 32, 67_091)
U2FUSION = ("u2fusion", "model.ckpt", 20, 659_217)


def test_crc32c_check_value() -> None:
    # The standard CRC-32C check value (RFC 3720 / iSCSI).
    assert tf1.crc32c(b"123456789") == 0xE3069283
    assert tf1.crc32c(b"") == 0


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB block with prefix-compressed keys and one restart point."""
    body, prev = bytearray(), b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(prev)) and key[shared] == prev[shared]:
            shared += 1
        body += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        prev = key
    return bytes(body) + struct.pack("<II", 0, 1)


def _write_bundle(prefix: Path, tensors: dict[str, np.ndarray], compression: int = 0) -> None:
    """A tiny tensor bundle written from the format description (independent of the reader)."""
    data, entries = bytearray(), [(b"", b"\x08\x01")]  # BundleHeaderProto: num_shards = 1
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name], dtype="<f4")
        shape = b"".join(b"\x12" + _varint(len(d)) + d for d in (b"\x08" + _varint(s) for s in arr.shape))
        proto = b"\x08\x01" + b"\x12" + _varint(len(shape)) + shape
        proto += b"\x20" + _varint(len(data)) + b"\x28" + _varint(arr.nbytes)
        entries.append((name.encode(), proto))
        data += arr.tobytes()
    table = bytearray()
    block = _block(entries)
    table += block + bytes([compression]) + b"\0\0\0\0"
    index = _block([(entries[-1][0], _varint(0) + _varint(len(block)))])
    index_off = len(table)
    table += index + b"\0\0\0\0\0"
    meta = _block([])
    meta_off = len(table)
    table += meta + b"\0\0\0\0\0"
    handles = _varint(meta_off) + _varint(len(meta)) + _varint(index_off) + _varint(len(index))
    table += handles + b"\0" * (40 - len(handles)) + struct.pack("<Q", 0xDB4775248B80FB57)
    prefix.with_name(prefix.name + ".index").write_bytes(bytes(table))
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(data))


def test_round_trip_of_a_handmade_bundle(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "net/conv_a/kernel": rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
        "net/conv_a/bias": rng.normal(size=(4,)).astype(np.float32),
        "net/conv_b/kernel": rng.normal(size=(1, 1, 4, 1)).astype(np.float32),
    }
    _write_bundle(tmp_path / "ck", tensors)
    got = tf1.read_checkpoint(tmp_path / "ck")
    assert sorted(got) == sorted(tensors)
    for k, v in tensors.items():
        assert got[k].dtype == np.float32 and np.array_equal(got[k], v)


def test_refuses_compressed_blocks_and_bad_magic(tmp_path: Path) -> None:
    _write_bundle(tmp_path / "ck", {"x": np.ones(2, np.float32)}, compression=1)
    with pytest.raises(tf1.CheckpointFormatError, match="compressed"):
        tf1.read_checkpoint(tmp_path / "ck")
    index = tmp_path / "ck.index"
    index.write_bytes(index.read_bytes()[:-1] + b"\0")
    with pytest.raises(tf1.CheckpointFormatError, match="magic"):
        tf1.read_checkpoint(tmp_path / "ck")


def test_hwio_to_oihw_matches_tf_same_convolution() -> None:
    """torch conv2d with the converted kernel = TF 'SAME' cross-correlation written out in numpy."""
    import torch
    from numpy.lib.stride_tricks import sliding_window_view

    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 11, 3)).astype(np.float32)  # H×W×C
    w = rng.normal(size=(5, 3, 3, 2)).astype(np.float32)  # H×W×in×out (non-square: catches a spatial transpose)
    pt, pl = (w.shape[0] - 1) // 2, (w.shape[1] - 1) // 2
    xp = np.pad(x, ((pt, w.shape[0] - 1 - pt), (pl, w.shape[1] - 1 - pl), (0, 0)))
    ref = np.einsum("hwcij,ijco->hwo", sliding_window_view(xp, w.shape[:2], axis=(0, 1)), w)
    k = tf1.hwio_to_oihw(w)
    assert k.shape == (2, 3, 5, 3) and k.flags.c_contiguous
    got = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(2, 0, 1))[None], torch.from_numpy(k), padding=(2, 1))
    np.testing.assert_allclose(got[0].numpy().transpose(1, 2, 0), ref, atol=1e-4)
    with pytest.raises(ValueError):
        tf1.hwio_to_oihw(np.zeros((3, 3, 1)))


def test_convert_tensors_is_strict() -> None:
    t = {"a/kernel": np.zeros((3, 3, 1, 2), np.float32), "a/bias": np.zeros(2, np.float32)}
    out = tf1.convert_tensors(t, {"a/kernel": "a.weight", "a/bias": "a.bias"})
    assert out["a.weight"].shape == (2, 1, 3, 3)
    with pytest.raises(KeyError, match="unused"):
        tf1.convert_tensors(t, {"a/kernel": "a.weight"})
    with pytest.raises(KeyError, match="same parameter"):
        tf1.convert_tensors(t, {"a/kernel": "a.weight", "a/bias": "a.weight"})


@pytest.mark.parametrize("method_dir,prefix,count,values", [SDNET, U2FUSION])
def test_official_checkpoints(official_dir: Path, method_dir: str, prefix: str, count: int, values: int) -> None:
    """Every tensor of the official checkpoints: float32, contiguous in the shard, CRC-32C as stored."""
    base = official_dir / method_dir / "weights" / prefix
    if not base.with_name(prefix + ".index").is_file():
        pytest.skip(f"{base}.index not found")
    shards, entries = tf1.read_index(base.with_name(prefix + ".index"))
    assert shards == 1 and len(entries) == count
    ordered = [entries[k] for k in sorted(entries)]
    assert ordered[0].offset == 0
    assert all(a.offset + a.size == b.offset for a, b in zip(ordered, ordered[1:]))  # back to back, key order
    data_size = base.with_name(prefix + ".data-00000-of-00001").stat().st_size
    assert ordered[-1].offset + ordered[-1].size == data_size == 4 * values
    tensors = tf1.read_checkpoint(base, verify_crc=(method_dir == "sdnet"))  # full CRC pass on the small one
    assert sum(v.size for v in tensors.values()) == values
    assert all(v.dtype == np.float32 and np.all(np.isfinite(v)) for v in tensors.values())
    if method_dir == "sdnet":
        assert tensors["fusion_model/layer1_ir/w1_ir"].shape == (5, 5, 1, 16)
        assert tensors["fusion_model/layer5_fuse/w5_fuse"].shape == (1, 1, 128, 1)
    else:
        assert tensors["Generator/encoder/dense_block_conv5/kernel"].shape == (3, 3, 220, 44)
        assert tensors["Generator_1/decoder/conv2_1/kernel"].shape == (3, 3, 264, 128)
        # a few CRCs on the large checkpoint (the full pass costs ~0.4 s)
        raw = base.with_name(prefix + ".data-00000-of-00001").read_bytes()
        for e in ordered[:4]:
            assert tf1.masked_crc32c(raw[e.offset:e.offset + e.size]) == e.crc32c
