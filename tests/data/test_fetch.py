"""``fusionbench fetch``: downloads served from ../shared over a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import http.server
import threading
from functools import partial
from pathlib import Path

import pytest

from fusionbench.fetch import DownloadError, fetch_dataset, remote_path


class _SourceLayout(http.server.SimpleHTTPRequestHandler):
    """Serves ``shared/data/tno/{vis,ir}`` under the source repository's names (``vi/``, ``ir/``)."""

    def translate_path(self, path: str) -> str:
        rel = path.lstrip("/")
        rel = "vis/" + rel[3:] if rel.startswith("vi/") else rel
        return str(Path(self.directory) / rel)

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def server(shared_dir):
    handler = partial(_SourceLayout, directory=str(shared_dir / "data" / "tno"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_fetch_tno_from_local_server(server, tmp_path, shared_dir) -> None:
    root = fetch_dataset("tno", tmp_path, base_url=server, workers=4, log=lambda m: None)
    files = sorted(p.relative_to(root) for p in root.rglob("*.png"))
    assert len(files) == 50
    assert (root / "tno/ir/01.png").read_bytes() == (shared_dir / "data/tno/ir/01.png").read_bytes()
    # second call: nothing to download
    messages: list[str] = []
    fetch_dataset("tno", tmp_path, base_url=server, log=messages.append)
    assert "0 files to download" in messages[0]


def test_tampered_file_is_refused(server, tmp_path) -> None:
    target = tmp_path / "tno/ir/01.png"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"tampered")  # a wrong local copy is re-downloaded, not trusted
    fetch_dataset("tno", tmp_path, base_url=server, log=lambda m: None)
    assert target.read_bytes() != b"tampered"
    with pytest.raises(DownloadError, match="files failed"):
        fetch_dataset("tno", tmp_path / "x", base_url=server + "nowhere/", log=lambda m: None)


class _HarvardLayout(http.server.SimpleHTTPRequestHandler):
    """Serves ``shared/data/harvard`` under the source repository's names (``PET-MRI/PET/<id>.png``, ...)."""

    def translate_path(self, path: str) -> str:
        rel = path.lstrip("/")
        for theirs, ours in (("PET-MRI/", "MRI-PET/"), ("SPECT-MRI/", "MRI-SPECT/"), ("CT-MRI/", "MRI-CT/")):
            if rel.startswith(theirs):
                rel = ours + rel[len(theirs):]
        return str(Path(self.directory) / rel)

    def log_message(self, *args) -> None:
        pass


def test_fetch_harvard_from_local_server(shared_dir, tmp_path) -> None:
    import fusionbench

    handler = partial(_HarvardLayout, directory=str(shared_dir / "data" / "harvard"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        root = fetch_dataset("harvard", tmp_path, base_url=f"http://127.0.0.1:{httpd.server_address[1]}/",
                             log=lambda m: None)
    finally:
        httpd.shutdown()
    assert len(list(root.rglob("*.png"))) == 2 * (245 + 333 + 160)
    ds = fusionbench.create_dataset("harvard-mri-spect", data_dir=root)
    assert len(ds) == 333 and ds.problems == []


def test_remote_layout_of_harvard() -> None:
    assert remote_path("harvard", "harvard/MRI-PET/PET/25030.png") == "PET-MRI/PET/25030.png"
    assert remote_path("harvard", "harvard/MRI-CT/CT/2006.png") == "CT-MRI/CT/2006.png"


def test_a_source_that_cannot_be_reached_is_one_line_after_one_try(tmp_path, monkeypatch) -> None:
    """Offline (or a wrong --base-url), ``fetch harvard`` made 1,476 failed requests (about 100 s) before its
    one line; now the first file is tried alone and its connection error ends the fetch."""
    from fusionbench import fetch

    calls = []
    real = fetch._download

    def counting(*job):
        calls.append(job[0])
        return real(*job)

    monkeypatch.setattr(fetch, "_download", counting)
    with pytest.raises(DownloadError, match=r"the source cannot be reached, so the other \d+ files were not tried"):
        fetch_dataset("harvard", tmp_path, base_url="http://127.0.0.1:9/", log=lambda m: None)
    assert len(calls) == 1


def test_a_download_whose_sha256_differs_is_refused_and_leaves_nothing(server, tmp_path, shared_dir) -> None:
    """``_download`` (pooch with the pinned hash): a mismatch is a DownloadError naming both digests; neither the
    target nor a temporary file is left."""
    import hashlib

    from fusionbench.fetch import _download

    served = hashlib.sha256((shared_dir / "data/tno/ir/01.png").read_bytes()).hexdigest()
    target = tmp_path / "tno" / "ir" / "01.png"
    with pytest.raises(DownloadError, match=f"ir/01.png: sha256 {served} does not match the pinned {'0' * 64}; "
                                            "refused"):
        _download(server + "ir/01.png", target, "0" * 64)
    assert not target.exists() and not any(target.parent.iterdir())
    _download(server + "ir/01.png", target, served)
    assert target.read_bytes() == (shared_dir / "data/tno/ir/01.png").read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["01.png"]


def test_fetch_prints_no_line_per_file(server, tmp_path) -> None:
    """pooch logs "Downloading data from ..." for every file; a fetch prints only its own line."""
    import logging

    import pooch

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    pooch.get_logger().addHandler(handler)
    try:
        fetch_dataset("tno", tmp_path, base_url=server, workers=2, log=lambda m: None)
    finally:
        pooch.get_logger().removeHandler(handler)
    assert records == [] and len(list(tmp_path.rglob("*.png"))) == 50
    assert pooch.get_logger().filters == []  # the filter is removed again
