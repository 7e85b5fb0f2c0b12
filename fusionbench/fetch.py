"""Downloading the released datasets into the cache, each file pinned by sha256.

A *bundle* is the set of released datasets whose manifests name the same
``fetch.bundle`` (:mod:`fusionbench.data.manifest`): ``fusionbench fetch harvard``
fetches the 738 Harvard AANLIB pairs of the three ``harvard-*`` manifests from
``xianming-gu/Havard-Medical-Image-Fusion-Datasets`` at the pinned commit;
``fusionbench fetch tno`` the 25 TNO pairs from ``Zhaozixiang1228/MMIF-CDDFuse``.
Base URLs and the mapping between our layout and the source's come from the
manifests.  Files land in ``DATA_DIR/<path in the manifest>`` (``DATA_DIR`` =
``--data-dir`` or ``$FUSIONBENCH_HOME/data``), the layout every dataset reads.
A file whose sha256 differs from the manifest is refused.  ``base_url`` points
elsewhere (a mirror, or a local server in tests).  Each file is downloaded with
pooch (``pooch.retrieve`` with the pinned hash: a temporary file beside the
target, checked, then moved into place).
"""
from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import data_dir as default_data_dir
from .data.manifest import DatasetManifest, ManifestError, released_manifests
from .io import sha256_file


@dataclass(frozen=True)
class Bundle:
    """What ``fusionbench fetch NAME`` downloads: one base URL, the datasets of its manifests."""

    name: str
    base_url: str
    datasets: tuple[str, ...]
    remap: dict[str, str]  # our layout's prefix → the source repository's


def bundles(manifests: dict[str, DatasetManifest] | None = None) -> dict[str, Bundle]:
    """Fetch bundles by name, gathered from the manifests' ``fetch`` sections (manifest file order)."""
    manifests = released_manifests() if manifests is None else manifests
    found: dict[str, dict[str, Any]] = {}
    for m in manifests.values():
        if m.fetch is None:
            continue
        b = found.setdefault(m.fetch.bundle, {"base_url": m.fetch.base_url, "datasets": [], "remap": {}})
        if b["base_url"] != m.fetch.base_url:
            raise ManifestError(m.path, f"fetch bundle {m.fetch.bundle!r} has base_url {b['base_url']} in another "
                                        f"manifest; one bundle is one source")
        b["datasets"].append(m.name)
        b["remap"].update(m.fetch.remap)
    return {name: Bundle(name, b["base_url"], tuple(b["datasets"]), b["remap"]) for name, b in found.items()}


def bundle_names() -> list[str]:
    """The names ``fusionbench fetch`` accepts for data (``harvard``, ``tno``, ...)."""
    return list(bundles())


class DownloadError(RuntimeError):
    """A file could not be downloaded or did not match its pinned sha256."""


def remote_path(source: str, local_rel: str) -> str:
    """The path of ``local_rel`` (our layout) inside the source repository."""
    for ours, theirs in bundles()[source].remap.items():
        if local_rel.startswith(ours):
            return theirs + local_rel[len(ours):]
    raise ValueError(f"{local_rel} is not part of {source}")


def _download(url: str, target: Path, sha256: str) -> None:
    """Download ``url`` to ``target`` if its sha256 is ``sha256``, else :class:`DownloadError` (``target`` untouched).

    HTTP errors (``requests.exceptions.HTTPError``) and unreachable sources
    (``requests.exceptions.ConnectionError``) propagate as pooch raises them.
    Plain ``http(s)://`` URLs only (pooch's HTTP downloader with a 60 s timeout).
    """
    import pooch

    try:
        pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=target.name, path=target.parent,
                       downloader=pooch.HTTPDownloader(progressbar=False, timeout=60), progressbar=False)
    except ValueError as exc:
        got = re.search(r"does not match the known hash: expected \S+ but got ([0-9a-f]+)", str(exc))
        if got is None:  # not pooch's hash mismatch (requests' bad-URL errors are ValueErrors too)
            raise
        raise DownloadError(f"{url}: sha256 {got.group(1)} does not match the pinned {sha256}; refused") from None


def fetch_dataset(source: str, data_dir: str | Path | None = None, *, base_url: str | None = None,
                  workers: int = 8, log: Callable[[str], None] = print) -> Path:
    """Fetch every file of bundle ``source`` (``harvard``, ``tno``, ...) that is missing or differs; return DATA_DIR."""
    known = bundles()
    if source not in known:
        raise KeyError(f"unknown data source {source!r}; known: {', '.join(known)}")
    spec = known[source]
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    base = (base_url or spec.base_url).rstrip("/") + "/"
    jobs = []
    manifests = released_manifests()
    for name in spec.datasets:
        for rec in manifests[name].pairs:
            for rel, sha in ((rec["a"], rec["a_sha256"]), (rec["b"], rec["b_sha256"])):
                target = root / rel
                if target.is_file() and sha256_file(target) == sha:
                    continue
                jobs.append((base + remote_path(source, rel), target, sha))
    log(f"{source}: {len(jobs)} files to download into {root}")
    errors = []

    def one(job: tuple[str, Path, str]) -> None:
        try:
            _download(*job)
        except Exception as exc:
            errors.append(f"{job[0]}: {exc}")

    import pooch
    import requests

    def quiet(record: logging.LogRecord) -> bool:  # pooch's per-file "Downloading data from ..." lines left out
        return record.levelno >= logging.WARNING

    pooch.get_logger().addFilter(quiet)
    try:
        if jobs:  # the first alone: a source that cannot be reached (offline, a wrong --base-url) is one line now
            try:
                _download(*jobs[0])
            except (DownloadError, requests.exceptions.HTTPError) as exc:  # the source answers: go on with the others
                errors.append(f"{jobs[0][0]}: {exc}")
            except (requests.exceptions.ConnectionError, requests.exceptions.InvalidSchema,
                    requests.exceptions.MissingSchema, requests.exceptions.InvalidURL) as exc:
                # no answer (name resolution, refused, connect timeout) or a URL no server answers: not a local error
                raise DownloadError(f"{jobs[0][0]}: {exc}: the source cannot be reached, so the other "
                                    f"{len(jobs) - 1} files were not tried") from None
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, jobs[1:]))
    finally:
        pooch.get_logger().removeFilter(quiet)
    if errors:
        raise DownloadError(f"{len(errors)} of {len(jobs)} files failed, first: {errors[0]}")
    return root
