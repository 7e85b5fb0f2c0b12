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
    assert not (home / "weights" / "toy" / "toy.bin.part").exists()


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
