"""Downloading the released datasets into the cache, each file pinned by sha256.

``fusionbench fetch harvard`` fetches the 738 Harvard AANLIB pairs from the
public repository ``xianming-gu/Havard-Medical-Image-Fusion-Datasets`` at the
pinned commit; ``fusionbench fetch tno`` the 25 TNO pairs from
``Zhaozixiang1228/MMIF-CDDFuse``.  Files land in
``DATA_DIR/harvard/<TASK>/<MODALITY>/<id>.png`` (``DATA_DIR`` =
``--data-dir`` or ``$FUSIONBENCH_HOME/data``), the layout every dataset reads.
A file whose sha256 differs from the committed manifest is refused.
``base_url`` points elsewhere (a mirror, or a local server in tests).
"""
from __future__ import annotations

import hashlib
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from .data.manifest import manifest
from .config import data_dir as default_data_dir

SOURCES = {
    "harvard": {
        "base_url": "https://raw.githubusercontent.com/xianming-gu/Havard-Medical-Image-Fusion-Datasets/"
                    "984d169e8abd01baa130db3c5b9be3ba80191c1f/",
        "datasets": ("harvard-mri-pet", "harvard-mri-spect", "harvard-mri-ct"),
        # our layout → the source repository's layout
        "remap": {"harvard/MRI-PET/": "PET-MRI/", "harvard/MRI-SPECT/": "SPECT-MRI/", "harvard/MRI-CT/": "CT-MRI/"},
    },
    "tno": {
        "base_url": "https://raw.githubusercontent.com/Zhaozixiang1228/MMIF-CDDFuse/"
                    "fd8da1f39d8d403b7343e577bd5a30cba38c7b7b/test_img/TNO/",
        "datasets": ("tno",),
        "remap": {"tno/vis/": "vi/", "tno/ir/": "ir/"},
    },
}


class DownloadError(RuntimeError):
    """A file could not be downloaded or did not match its pinned sha256."""


def remote_path(source: str, local_rel: str) -> str:
    """The path of ``local_rel`` (our layout) inside the source repository."""
    for ours, theirs in SOURCES[source]["remap"].items():
        if local_rel.startswith(ours):
            return theirs + local_rel[len(ours):]
    raise ValueError(f"{local_rel} is not part of {source}")


def _download(url: str, target: Path, sha256: str) -> None:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - pinned https/http sources
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise DownloadError(f"{url}: sha256 {digest} does not match the pinned {sha256}; refused")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(target)


def fetch_dataset(source: str, data_dir: str | Path | None = None, *, base_url: str | None = None,
                  workers: int = 8, log: Callable[[str], None] = print) -> Path:
    """Fetch every file of ``source`` (``harvard`` or ``tno``) that is missing or differs; return DATA_DIR."""
    if source not in SOURCES:
        raise KeyError(f"unknown data source {source!r}; known: {', '.join(SOURCES)}")
    spec = SOURCES[source]
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    base = (base_url or spec["base_url"]).rstrip("/") + "/"
    jobs = []
    for name in spec["datasets"]:
        for rec in manifest()["datasets"][name]["pairs"]:
            for rel, sha in ((rec["a"], rec["a_sha256"]), (rec["b"], rec["b_sha256"])):
                target = root / rel
                if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha:
                    continue
                jobs.append((base + remote_path(source, rel), target, sha))
    log(f"{source}: {len(jobs)} files to download into {root}")
    errors = []

    def one(job: tuple[str, Path, str]) -> None:
        try:
            _download(*job)
        except Exception as exc:
            errors.append(f"{job[0]}: {exc}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, jobs))
    if errors:
        raise DownloadError(f"{len(errors)} of {len(jobs)} files failed, first: {errors[0]}")
    return root
