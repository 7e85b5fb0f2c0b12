"""Datasets: manifests, splits, the folder dataset and the built-in default."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import fusionbench
from fusionbench.data.manifest import manifest, splits
from fusionbench.io import load_image


def test_split_v1_is_disjoint_and_complete() -> None:
    for name, spec in manifest()["datasets"].items():
        ids = {p["id"] for p in spec["pairs"]}
        s = splits()["datasets"][name]
        assert set(s["train"]) | set(s["test"]) == ids
        assert not set(s["train"]) & set(s["test"])
        assert set(s.get("paper_train", [])) <= set(s["train"])
        assert set(s.get("paper20", [])) <= set(s["test"])


def test_paper_sets_have_the_papers_sizes(shared_dir) -> None:
    train = fusionbench.data.paper_training_pairs(shared_dir / "data")
    assert len(train) == 180
    twenty = fusionbench.data.paper20_pairs(shared_dir / "data")
    assert [p.task for p in twenty].count("MRI-PET") == 10 and [p.task for p in twenty].count("MRI-SPECT") == 10


def test_no_test_mri_is_seen_in_training(shared_dir) -> None:
    """MRI-CT and MRI-SPECT share 30 MRI slices: identical pixels must be in the same split."""
    seen: dict[bytes, set[str]] = {}
    for name in ("harvard-mri-spect", "harvard-mri-ct"):
        ds = fusionbench.create_dataset(name, data_dir=shared_dir / "data")
        for split in ("train", "test"):
            for pair in ds.select(split):
                seen.setdefault(load_image(pair.a_path).tobytes(), set()).add(split)
    assert all(len(s) == 1 for s in seen.values())


def test_harvard_layout_and_counts(shared_dir) -> None:
    counts = {n: len(fusionbench.create_dataset(n, data_dir=shared_dir / "data"))
              for n in ("harvard-mri-pet", "harvard-mri-spect", "harvard-mri-ct", "tno")}
    assert counts == {"harvard-mri-pet": 245, "harvard-mri-spect": 333, "harvard-mri-ct": 160, "tno": 25}
    pet = fusionbench.create_dataset("harvard-mri-pet", data_dir=shared_dir / "data").pairs[0]
    assert load_image(pet.a_path).ndim == 2 and load_image(pet.b_path).shape[2] == 3


def test_missing_data_gives_the_fetch_command(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="fusionbench fetch harvard"):
        fusionbench.create_dataset("harvard-mri-ct", data_dir=tmp_path)


def test_folder_dataset_pairs_by_name(tmp_path, make_pairs) -> None:
    make_pairs(tmp_path, 3)
    ds = fusionbench.create_dataset(f"folder:{tmp_path}")
    assert [p.id for p in ds.pairs] == ["p000", "p001", "p002"] and ds.problems == []
    assert ds.select("test") == ds.pairs


def test_a_sub_folder_is_named_as_a_folder_not_read(tmp_path, make_pairs) -> None:
    """``a/p001.png/`` (a folder) was ignored without a word, and only its partner was reported (missing)."""
    make_pairs(tmp_path, 2)
    (tmp_path / "a" / "p001.png").unlink()
    (tmp_path / "a" / "p001.png").mkdir()
    (tmp_path / "a" / "notes").mkdir()
    ds = fusionbench.create_dataset(f"folder:{tmp_path}")
    assert [p.id for p in ds.pairs] == ["p000"]
    assert f"{tmp_path / 'a' / 'p001.png'}: is a folder, not an image file, skipped" in ds.problems
    # any other sub-folder is one line too (session 37's audit: a per-subject layout, a/s01/*.png, gave an
    # empty dataset without a word)
    assert (f"{tmp_path / 'a' / 'notes'}: is a sub-folder, not read (pairs are the image files of a/ and b/ "
            "themselves), skipped") in ds.problems


def test_a_folder_dataset_that_is_not_there_says_so(tmp_path) -> None:
    """``folder:/nonexistent`` used to say "needs sub-folders a/ and b/", as if the folder were there."""
    with pytest.raises(FileNotFoundError, match=r"nosuch: folder does not exist \(a folder dataset is PATH"):
        fusionbench.data.create_dataset(f"folder:{tmp_path / 'nosuch'}")
    (tmp_path / "file").write_text("")
    with pytest.raises(FileNotFoundError, match=r"file: not a folder"):
        fusionbench.data.create_dataset(f"folder:{tmp_path / 'file'}")
    with pytest.raises(FileNotFoundError, match=r"needs sub-folders a/ and b/"):
        fusionbench.data.create_dataset(f"folder:{tmp_path}")


def test_builtin_dataset_is_deterministic(tmp_path, monkeypatch) -> None:
    from fusionbench.data import synthetic

    a = synthetic.generate(tmp_path / "one")
    b = synthetic.generate(tmp_path / "two")
    for task in synthetic.TASKS:
        for f in sorted((a / task / "b").glob("*.png")):
            assert np.array_equal(load_image(f), load_image(b / task / "b" / f.name))
    pet = load_image(next((a / "builtin-mri-pet" / "b").glob("*.png")))
    ct = load_image(next((a / "builtin-mri-ct" / "b").glob("*.png")))
    assert pet.ndim == 3 and ct.ndim == 2 and pet.shape[:2] == (256, 256)
    mri = load_image(next((a / "builtin-mri-pet" / "a").glob("*.png")))
    assert mri.ndim == 2 and mri.max() > 200  # real anatomy, full range


def _write(root, stems, seed=0):
    rng = np.random.default_rng(seed)
    for side in "ab":
        (root / side).mkdir(parents=True, exist_ok=True)
        for stem in stems:
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / side / f"{stem}.png")


def test_folder_pairs_are_in_natural_order(tmp_path) -> None:
    """D1: folder pairs (and so runs and reports) go img2 before img10."""
    _write(tmp_path, ["img10", "img2", "img1"])
    ds = fusionbench.create_dataset(f"folder:{tmp_path}")
    assert [p.id for p in ds.pairs] == ["img1", "img2", "img10"]


def test_folder_pair_digest_covers_both_files(tmp_path) -> None:
    """D2: the pair's sha256 (the fused-image cache key's input) changes when only the b file changes."""
    _write(tmp_path, ["p0"])
    before = fusionbench.create_dataset(f"folder:{tmp_path}").pairs[0].sha256
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "b" / "p0.png")
    after = fusionbench.create_dataset(f"folder:{tmp_path}").pairs[0].sha256
    assert before != after and before[:32] == after[:32]


def test_folder_task_argument_overrides_dataset_json(tmp_path) -> None:
    """D3: ``task`` given to the folder dataset wins over the task dataset.json declares."""
    from fusionbench.data.folder import folder_dataset

    _write(tmp_path, ["p0"])
    (tmp_path / "dataset.json").write_text(json.dumps({"task": "MRI-PET"}))
    assert folder_dataset(str(tmp_path)).pairs[0].task == "MRI-PET"
    ds = folder_dataset(str(tmp_path), task="MRI-CT")
    assert ds.task == "MRI-CT" and [p.task for p in ds.pairs] == ["MRI-CT"]
