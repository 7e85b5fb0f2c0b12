"""The weights cache: fetch --from a local folder with sha256 checks, refusal, unavailable methods."""
from __future__ import annotations

import shutil

import pytest

import fusionbench
from fusionbench.cli import main
from fusionbench.weights import ChecksumError, WeightsMissingError, fetch_weights, register_weights, weights_path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_weights(tmp_path):
    import hashlib

    src = tmp_path / "official" / "toy" / "weights"
    src.mkdir(parents=True)
    (src / "toy.bin").write_bytes(b"toy weights")
    digest = hashlib.sha256(b"toy weights").hexdigest()
    register_weights("toy-test", filename="toy.bin", sha256=digest, url="http://127.0.0.1:9/none", method_dir="toy")
    return tmp_path / "official"


def test_fetch_from_local_folder_and_refuse_a_bad_copy(home, fake_weights) -> None:
    with pytest.raises(WeightsMissingError, match="fusionbench fetch weights toy-test"):
        weights_path("toy-test")
    path = fetch_weights("toy-test", from_dir=fake_weights)
    assert path == home / "weights" / "toy" / "toy.bin" and path.read_bytes() == b"toy weights"
    (fake_weights / "toy" / "weights" / "toy.bin").write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="does not match the pinned"):
        fetch_weights("toy-test", from_dir=fake_weights, force=True)
    assert sorted(p.name for p in (home / "weights" / "toy").iterdir()) == ["toy.bin"]  # no temporary copy left


def test_cli_fetch_weights_from_shared(home, official_dir, capsys) -> None:
    assert main(["fetch", "weights", "mdl", "--from", str(official_dir)]) == 0
    assert "sha256 verified" in capsys.readouterr().out
    assert fusionbench.create_method("mdl").unavailable_reason() is None


def test_missing_weights_make_a_method_unavailable_not_a_crash(home, tmp_path, make_pairs, capsys) -> None:
    assert fusionbench.create_method("mdl").unavailable_reason().startswith("weights not in cache")
    data = make_pairs(tmp_path / "d", 1)
    assert main(["run", "--methods", "mdl,average", "--datasets", f"folder:{data}", "--metrics", "EN",
                 "--out", str(tmp_path / "out"), "--workers", "0", "--quiet", "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "skipping method mdl: weights not in cache" in captured.err
    assert "1 methods unavailable" in captured.out


def test_group_names_fetch_every_file(home, official_dir, capsys) -> None:
    from fusionbench.weights import expand_weight_names, missing_weights_message

    assert expand_weight_names("sdnet") == ["sdnet.data", "sdnet.index"]
    assert "run `fusionbench fetch weights sdnet`" in missing_weights_message(["sdnet.index", "sdnet.data"])
    assert main(["fetch", "weights", "sdnet", "--from", str(official_dir)]) == 0
    assert capsys.readouterr().out.count("sha256 verified") == 2
    assert main(["fetch", "weights", "nope"]) == 1


# --------------------------------------------------------------------------- verification at load (issue 14.2)
def _flip_byte(path, offset: int) -> None:
    """Flip one bit, and move the modification time on by a second: the file system's clock ticks every few
    milliseconds, and a write in the tick of the last check would keep the file's (size, mtime) memo key."""
    import os

    before = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))


def test_verify_file_against_pin_and_sidecar_memoised(tmp_path, monkeypatch) -> None:
    import hashlib

    from fusionbench import weights as w

    f = tmp_path / "net.pth"
    f.write_bytes(b"weights v1")
    good = hashlib.sha256(b"weights v1").hexdigest()
    with pytest.raises(ChecksumError, match=r"net\.pth: no sha256 sidecar net\.sha256"):
        w.verify_file(f)
    (tmp_path / "net.sha256").write_text(f"{good}  net.pth\n")
    assert w.verify_file(f) == f and w.verify_file(f, good) == f
    calls = []
    monkeypatch.setattr(w, "sha256_file", lambda p: calls.append(p) or good)
    w.verify_file(f, good)
    assert calls == []  # memoised by (path, size, mtime_ns)
    monkeypatch.undo()
    _flip_byte(f, 3)
    with pytest.raises(ChecksumError) as err:
        w.verify_file(f)
    msg = str(err.value)
    assert "\n" not in msg and str(f) in msg and "does not match" in msg and "reinstall fusionbench" in msg


def test_a_flipped_byte_in_a_cached_file_is_refused_at_load_and_refetched(home, fake_weights) -> None:
    path = fetch_weights("toy-test", from_dir=fake_weights)
    assert weights_path("toy-test") == path
    _flip_byte(path, 0)
    with pytest.raises(ChecksumError, match="run `fusionbench fetch weights toy-test` to fetch it again"):
        weights_path("toy-test")
    fetch_weights("toy-test", from_dir=fake_weights)  # the fetch command repairs it
    assert weights_path("toy-test").read_bytes() == b"toy weights"


def test_weights_is_a_registry_and_a_clash_is_an_error() -> None:
    from fusionbench.registry import Registry
    from fusionbench.weights import WEIGHTS

    assert isinstance(WEIGHTS, Registry) and "ifcnn_max" in WEIGHTS.names()
    wf = WEIGHTS.get("ifcnn_max").info
    assert register_weights("ifcnn_max", filename=wf.filename, sha256=wf.sha256, url=wf.url,
                            method_dir=wf.method_dir, description=wf.description) == wf
    with pytest.raises(ValueError, match="ifcnn_max.*already declared differently"):
        register_weights("ifcnn_max", filename=wf.filename, sha256="0" * 64, url=wf.url, method_dir=wf.method_dir)


def test_fetch_goes_on_past_a_file_it_cannot_fetch_and_names_the_users_file(home, official_dir, tmp_path,
                                                                               capsys) -> None:
    """Before, ``fetch weights all --from DIR`` stopped at the first missing file (nothing after it was fetched),
    and a bad sha256 named the cache's temporary ``.part`` file instead of the file under ``--from``."""

    from fusionbench.weights import WEIGHTS, is_cached

    partial = tmp_path / "partial" / "sdnet" / "weights"
    partial.mkdir(parents=True)
    index, data = (WEIGHTS.get(n).info for n in ("sdnet.index", "sdnet.data"))
    shutil.copyfile(official_dir / "sdnet" / "weights" / index.filename, partial / index.filename)
    assert main(["fetch", "weights", "sdnet", "--from", str(tmp_path / "partial")]) == 1
    out, err = capsys.readouterr()
    assert "sdnet.index" in out and "sha256 verified" in out and is_cached("sdnet.index")
    assert "sdnet.data: not fetched" in err and "not found" in err
    assert "1 of 2 weight files not fetched: sdnet.data" in err
    (partial / data.filename).write_bytes(b"not the checkpoint")
    assert main(["fetch", "weights", "sdnet.data", "--from", str(tmp_path / "partial")]) == 1
    err = capsys.readouterr().err
    assert str(partial / data.filename) in err and "does not match the pinned" in err and ".part" not in err


# --------------------------------------------------------------------------- sidecars (audit 1.1)
def test_write_sidecar_and_read_sidecar_round_trip_with_the_exact_bytes(tmp_path) -> None:
    import hashlib

    from fusionbench.weights import read_sidecar, sidecar, sidecar_token, write_sidecar

    f = tmp_path / "mopa.seed1.pth"
    f.write_bytes(b"some weights")
    digest = hashlib.sha256(b"some weights").hexdigest()
    assert sidecar_token(f) == "missing"
    assert write_sidecar(f) == digest
    assert sidecar(f) == tmp_path / "mopa.seed1.sha256"
    assert sidecar(f).read_bytes() == f"{digest}  mopa.seed1.pth\n".encode()  # the committed format, byte for byte
    assert read_sidecar(f) == digest
    assert sidecar_token(f) == digest[:16] and sidecar_token(f, n=8) == digest[:8]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mopa.seed1.pth", "mopa.seed1.sha256"]
    sidecar(f).write_text("")  # an empty sidecar is unreadable, not a crash
    assert sidecar_token(f) == "missing"
    with pytest.raises(ChecksumError, match="no sha256 sidecar"):
        read_sidecar(f)


def test_committed_sidecars_read_verify_and_are_rewritten_byte_identical(tmp_path) -> None:
    """Every committed ``.sha256`` is what :func:`write_sidecar` writes for its file, and verifies it."""
    import importlib.util
    from pathlib import Path

    from fusionbench.weights import read_sidecar, sidecar_token, verify_file, write_sidecar

    roots = importlib.util.find_spec("fusionbench.methods").submodule_search_locations
    committed = sorted(p for root in roots for p in Path(root).rglob("*.sha256"))
    assert len(committed) >= 4  # mopa, v1, the two SwinFusion models
    for side in committed:
        weights = side.with_suffix(".pth")
        assert verify_file(weights) == weights
        assert sidecar_token(weights) == read_sidecar(weights)[:16]
        copy = tmp_path / side.parent.name / weights.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(weights, copy)
        write_sidecar(copy)
        assert copy.with_suffix(".sha256").read_bytes() == side.read_bytes(), side


# --------------------------------------------------------------------------- a corrupted cached file (session 32)
def test_a_corrupted_cached_file_makes_its_method_unavailable_with_one_line(home, official_dir, tmp_path, make_pairs,
                                                                            capsys) -> None:
    """Before, ``fusionbench list`` called a method whose cached weights had changed available, and a run failed
    every one of its pairs with the same ChecksumError (56 failure lines and rows for SDNet on MRI-PET's 56 pairs);
    now the method is unavailable with the checksum line and the run skips it in one line."""
    from fusionbench.weights import cached_path

    assert main(["fetch", "weights", "mdl", "--from", str(official_dir)]) == 0
    assert fusionbench.create_method("mdl").unavailable_reason() is None
    (name,) = fusionbench.create_method("mdl").info.weights
    _flip_byte(cached_path(name), 10)
    reason = fusionbench.create_method("mdl").unavailable_reason()
    assert "does not match the pinned" in reason and "run `fusionbench fetch weights mdl` to fetch it again" in reason
    assert str(cached_path(name)) in reason and "\n" not in reason
    capsys.readouterr()
    assert main(["list", "weights", "mdl"]) == 0
    assert capsys.readouterr().out.split()[:2] == ["mdl", "corrupted"]  # was "cached"
    data = make_pairs(tmp_path / "d", 2)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["run", "--methods", "mdl,average", "--datasets", f"folder:{data}", "--metrics", "EN",
                 "--out", str(out), "--workers", "0", "--quiet", "--no-report"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("skipping method mdl: ") == 1 and "does not match the pinned" in captured.err
    assert "0 failures" in captured.out and "1 methods unavailable" in captured.out
    import sqlite3

    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM failures").fetchone() == (0,)
    assert main(["fetch", "weights", "mdl", "--from", str(official_dir)]) == 0  # the named command repairs it
    assert fusionbench.create_method("mdl").unavailable_reason() is None


def test_unusable_weights_error_hashes_each_file_once_per_change(home, fake_weights, monkeypatch) -> None:
    """Asked for every pair (the worker checks availability before fusing), the check stays a stat per file, a
    mismatch included (a worker with a corrupted copy re-hashed it for every pair it was handed)."""
    from fusionbench import weights as w

    missing = w.unusable_weights_error(["toy-test"])
    assert isinstance(missing, w.WeightsMissingError) and str(missing).startswith("weights not in cache (toy-test)")
    fetch_weights("toy-test", from_dir=fake_weights)
    assert w.unusable_weights_error(["toy-test"]) is None
    calls = []
    real = w.sha256_file
    monkeypatch.setattr(w, "sha256_file", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        assert w.unusable_weights_error(["toy-test"]) is None
    assert calls == []
    _flip_byte(w.cached_path("toy-test"), 0)
    for _ in range(3):
        error = w.unusable_weights_error(["toy-test"])
        assert isinstance(error, ChecksumError) and "does not match the pinned" in str(error)
    assert len(calls) == 1
