"""Released datasets as manifest files; ``folder:PATH/dataset.json``; groups; fetch bundles from manifests."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import fusionbench
from fusionbench.data import DATASETS, ManifestError, create_dataset, dataset_info, dataset_title, register_manifest
from fusionbench.data.manifest import load_manifest, manifest, released_manifests, splits

REPO = Path(__file__).resolve().parents[2]

# sha256 of split v1 and of the v1 pair lists (json.dumps(..., sort_keys=True)), taken from the former
# manifest-v1.json / splits-v1.json before they were split into one manifest per dataset.
SPLIT_V1_SHA256 = "92ec83fcab84dbba7fc04b0b10d783c6039a03dbc4c4863ded887a60f24d7aae"
PAIRS_V1_SHA256 = "c66f89ca9da6aee79a76da4a0d32795706fe3f8ee6f57b48bf292ae5dc8cf1d3"


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def test_split_v1_and_pair_lists_are_unchanged() -> None:
    assert _sha(splits()["datasets"]) == SPLIT_V1_SHA256
    assert _sha({k: v["pairs"] for k, v in manifest()["datasets"].items()}) == PAIRS_V1_SHA256


def test_one_manifest_file_per_released_dataset() -> None:
    files = sorted(p.name for p in (REPO / "fusionbench/data/manifests").glob("*.json"))
    assert files == ["harvard-mri-ct.json", "harvard-mri-pet.json", "harvard-mri-spect.json", "tno.json"]
    assert set(released_manifests()) <= set(fusionbench.list_datasets())
    for name, m in released_manifests().items():
        info = dataset_info(name)
        assert info.task == m.metadata.task and info.title == m.metadata.title and info.licence and info.citation
        assert info.fetch_bundle == m.fetch.bundle and info.needs_download


def test_make_manifests_reproduces_the_committed_files(shared_dir) -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts/make_manifests.py"), str(shared_dir / "data"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DIFFERS" not in done.stdout and done.stdout.count("same") == 4


def test_titles_and_metadata_on_the_dataset(shared_dir) -> None:
    assert dataset_title("harvard-mri-pet") == "MRI-PET (Harvard AANLIB)"
    assert dataset_title("tno") == "IR-VIS (TNO)"
    assert dataset_title("builtin-mri-ct") == "MRI-CT (built-in, simulated CT)"
    assert dataset_title("no-such-dataset") == "no-such-dataset"
    tno = create_dataset("tno", data_dir=shared_dir / "data")
    assert tno.task == "IR-VIS" and tno.modalities == {"a": "VIS", "b": "IR"} and "Toet" in tno.citation
    assert tno.group_level is None and all(p.group is None for p in tno.pairs) and "nknown" in tno.group_note


def test_harvard_groups_are_the_series_of_the_source(shared_dir) -> None:
    """Pairs per series as counted in shared/data/MANIFEST.md (ids are <series><3-digit slice>)."""
    want = {
        "harvard-mri-pet": {"25": 86, "30": 73, "41": 86},
        "harvard-mri-spect": {"3": 35, "4": 12, "9": 33, "10": 36, "11": 12, "15": 15, "18": 32, "21": 16, "22": 18,
                              "25": 17, "28": 15, "29": 16, "35": 14, "36": 27, "40": 35},
        "harvard-mri-ct": {"2": 16, "16": 11, "20": 17, "21": 16, "28": 15, "32": 17, "33": 16, "34": 19, "37": 19,
                           "41": 14},
    }
    for name, counts in want.items():
        ds = create_dataset(name, data_dir=shared_dir / "data")
        assert ds.group_level == "series"
        assert Counter(p.group for p in ds.pairs) == counts
        assert all(p.group == p.id[:-3] for p in ds.pairs)
    assert "one subject" in create_dataset("harvard-mri-pet", data_dir=shared_dir / "data").group_note


# ---------------------------------------------------------------- folder:PATH/dataset.json
def test_folder_without_dataset_json_has_no_task(tmp_path, make_pairs) -> None:
    make_pairs(tmp_path, 2)
    ds = create_dataset(f"folder:{tmp_path}")
    assert ds.task is None and all(p.task is None and p.group is None for p in ds.pairs)
    assert dataset_title(f"folder:{tmp_path}") == f"folder:{tmp_path}"


def test_a_folder_is_one_dataset_however_its_path_is_typed(tmp_path, make_pairs, monkeypatch) -> None:
    """``folder:ds``, ``folder:ds/``, ``folder:./ds`` and the absolute path name one dataset (session 28: each
    spelling was a dataset of its own, fused again and reported apart); an empty path is refused."""
    import pytest

    from fusionbench.data.folder import folder_dataset_name

    make_pairs(tmp_path / "ds", 2)
    monkeypatch.chdir(tmp_path)
    names = {create_dataset(f"folder:{p}").name for p in ("ds", "ds/", "./ds", str(tmp_path / "ds"))}
    assert names == {f"folder:{(tmp_path / 'ds').resolve()}"} == {folder_dataset_name("ds")}
    with pytest.raises(FileNotFoundError, match="needs the folder's path"):
        create_dataset("folder:")


def test_a_symlinked_or_dotted_path_names_the_folder_it_leads_to(tmp_path, make_pairs, monkeypatch) -> None:
    """A folder reached through a symlink, or typed ``sub/../ds``, is the same dataset as ``ds`` (not resolving the
    path made each such spelling a dataset of its own, fused twice)."""
    make_pairs(tmp_path / "ds", 1)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "ds", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    names = {create_dataset(f"folder:{p}").name for p in ("ds", "link", "sub/../ds", str(tmp_path / "link") + "/")}
    assert names == {f"folder:{(tmp_path / 'ds').resolve()}"}


def test_a_symlink_loop_is_named_by_its_path_and_said_to_lead_nowhere(tmp_path, monkeypatch, capsys) -> None:
    """A symlink loop stopped naming the dataset with "Symlink loop from ..." (a RuntimeError): it is named by its
    absolute path, and building it says that the link leads to no folder (until session 30: "folder does not
    exist", of a link that ``ls`` shows); a broken link says the same."""
    from fusionbench.data.folder import folder_dataset_name

    (tmp_path / "loop").symlink_to("loop")
    monkeypatch.chdir(tmp_path)
    assert folder_dataset_name("loop") == f"folder:{Path.cwd() / 'loop'}"
    with pytest.raises(FileNotFoundError, match=r"loop: a symbolic link that leads to no folder \(broken, or a loop\)"):
        create_dataset("folder:loop")
    (tmp_path / "broken").symlink_to(tmp_path / "nothing_here")
    with pytest.raises(FileNotFoundError, match=r"broken: a symbolic link that leads to no folder"):
        create_dataset("folder:broken")
    # the run names a folder dataset first (folder_dataset_name): a broken link was named by its missing target,
    # and `fusionbench run --datasets folder:broken` said "/…/nothing_here: folder does not exist" (session 32)
    assert folder_dataset_name("broken") == f"folder:{tmp_path / 'broken'}"
    assert folder_dataset_name("./gone/") == f"folder:{tmp_path / 'gone'}"
    from fusionbench.cli import main

    assert main(["run", "--methods", "average", "--datasets", "folder:broken", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'broken'}: a symbolic link that leads to no folder" in err and "nothing_here" not in err


def test_folder_dataset_json_declares_task_modalities_groups(tmp_path, make_pairs) -> None:
    make_pairs(tmp_path, 3)
    (tmp_path / "dataset.json").write_text(json.dumps({
        "task": "MRI-PET", "modalities": {"a": "MRI", "b": "PET"}, "title": "My PET pairs", "licence": "CC BY 4.0",
        "citation": "Me et al. 2026", "groups": {"p000": "subject-1", "p001": "subject-1", "p002": 2},
        "group_level": "subject"}))
    ds = create_dataset(f"folder:{tmp_path}")
    assert ds.task == "MRI-PET" and {p.task for p in ds.pairs} == {"MRI-PET"}
    assert ds.modalities == {"a": "MRI", "b": "PET"} and ds.licence == "CC BY 4.0" and ds.citation == "Me et al. 2026"
    assert [p.group for p in ds.pairs] == ["subject-1", "subject-1", "2"] and ds.group_level == "subject"
    assert ds.title == dataset_title(f"folder:{tmp_path}") == "My PET pairs"


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    ('["MRI-PET"]', "expected a JSON object"),
    ('{"license": "MIT"}', "unknown key 'license' (did you mean 'licence'?)"),
    ('{"task": "MRI_PET"}', "use 'MRI-PET'"),
    ('{"task": "ir-vis"}', "use 'IR-VIS'"),
    ('{"task": "fusion"}', "must look like A-B"),
    ('{"task": 3}', "'task' must be str"),
    ('{"modalities": {"a": "MRI", "c": "PET"}}', "modalities must be"),
    ('{"groups": {"p999": "s1"}}', "not in the dataset, first: 'p999'"),
    ('{"groups": {"p000": [1]}}', "groups must map pair ids"),
])
def test_bad_dataset_json_is_one_line_naming_the_file(tmp_path, make_pairs, content, reason) -> None:
    make_pairs(tmp_path, 1)
    (tmp_path / "dataset.json").write_text(content)
    with pytest.raises(ManifestError) as info:
        create_dataset(f"folder:{tmp_path}")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "dataset.json") + ": ") and reason in message and "\n" not in message


# ---------------------------------------------------------------- adding a released dataset = one file
def _tiny_manifest(tmp_path: Path, name: str = "tiny-ir-vis") -> Path:
    data = tmp_path / "data"
    (data / "tiny/vis").mkdir(parents=True)
    (data / "tiny/ir").mkdir(parents=True)
    (data / "tiny/vis/01.pgm").write_bytes(b"P5\n3 2\n255\n" + bytes([0, 50, 100, 150, 200, 250]))
    (data / "tiny/ir/01.pgm").write_bytes(b"P5\n3 2\n255\n" + bytes([9, 9, 9, 200, 200, 200]))
    sha = {k: hashlib.sha256((data / f"tiny/{k}/01.pgm").read_bytes()).hexdigest() for k in ("vis", "ir")}
    doc = {"schema": 1, "name": name, "title": "IR-VIS (tiny)", "task": "IR-VIS",
           "modalities": {"a": "VIS", "b": "IR"}, "licence": "CC0", "citation": "none",
           "source_url": "https://example.org/tiny", "splits": {"test": ["01"]},
           "fetch": {"bundle": "tiny", "base_url": "https://example.org/tiny/", "remap": {"tiny/": ""}},
           "pairs": [{"id": "01", "a": "tiny/vis/01.pgm", "b": "tiny/ir/01.pgm", "a_sha256": sha["vis"],
                      "b_sha256": sha["ir"]}]}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_manifest_file_registers_a_dataset(tmp_path) -> None:
    path = _tiny_manifest(tmp_path)
    try:
        m = register_manifest(path)
        assert "tiny-ir-vis" in fusionbench.list_datasets("tiny*")
        assert DATASETS.get("tiny-ir-vis").source.startswith("user (")  # the caller, not functools
        ds = create_dataset("tiny-ir-vis", data_dir=tmp_path / "data")
        assert [p.id for p in ds.pairs] == ["01"] and ds.problems == [] and ds.task == "IR-VIS"
        assert ds.select("test") == ds.pairs and dataset_title("tiny-ir-vis") == "IR-VIS (tiny)"
        from fusionbench.fetch import bundles

        assert bundles({**released_manifests(), m.name: m})["tiny"].datasets == ("tiny-ir-vis",)
        with pytest.raises(ValueError, match="already registered"):
            register_manifest(path)
        with pytest.raises(FileNotFoundError, match="fusionbench fetch tiny"):
            create_dataset("tiny-ir-vis", data_dir=tmp_path / "empty")
    finally:
        DATASETS.remove("tiny-ir-vis")


def test_a_name_clash_with_a_released_dataset_is_an_error(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"'tno' is already registered by builtin; user \(\S*test_manifests\) cannot"):
        register_manifest(_tiny_manifest(tmp_path, name="tno"))


@pytest.mark.parametrize("edit, reason", [
    (lambda d: d.pop("licence"), "missing required key(s): licence"),
    (lambda d: d.update(schema=2), "schema 2 is not supported"),
    (lambda d: d.update(name="Tiny"), "must be lower-case"),
    (lambda d: d["pairs"][0].update(a_sha256="xyz"), "a_sha256 is not a hex sha256"),
    (lambda d: d["pairs"].append(dict(d["pairs"][0])), "appears twice"),
    (lambda d: d["splits"].update(test=["02"]), "split 'test' must be a list of the dataset's pair ids"),
    (lambda d: d.update(fetch={"bundle": "x"}), "fetch must be"),
    (lambda d: d.update(licenses="x"), "did you mean 'licence'"),
])
def test_bad_manifest_is_one_line_naming_the_file(tmp_path, edit, reason) -> None:
    path = _tiny_manifest(tmp_path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}: ") and reason in str(info.value)


def test_cli_fetch_choices_come_from_the_manifests(capsys) -> None:
    from fusionbench.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["fetch", "harvard"]).what == "harvard"
    assert parser.parse_args(["fetch", "tno"]).what == "tno"
    with pytest.raises(SystemExit):
        parser.parse_args(["fetch", "nosuch"])
    assert "'harvard', 'tno', 'weights'" in capsys.readouterr().err


def test_the_documented_example_manifest_registers_and_verifies(tmp_path) -> None:
    """docs/datasets.md's example, as printed, with the two tiny PGM files it names."""
    text = (REPO / "docs/datasets.md").read_text()
    block = text.split("<!-- example-manifest -->", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    path = tmp_path / "tiny-ir-vis.json"
    path.write_text(block)
    _tiny_manifest(tmp_path / "files")  # writes files/data/tiny/{vis,ir}/01.pgm
    try:
        register_manifest(path)
        ds = create_dataset("tiny-ir-vis", data_dir=tmp_path / "files" / "data")
        assert ds.problems == []  # the documented sha256 are those of the files
        assert ds.pairs[0].group == "scene-1" and ds.group_level == "scene" and ds.task == "IR-VIS"
    finally:
        DATASETS.remove("tiny-ir-vis")
