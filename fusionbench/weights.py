"""Third-party weights: a registry of pinned files, the cache they live in, and verification at load.

A method that needs files declares them where it is defined::

    register_weights("mdl", filename="...", sha256="...", url="https://...",
                     method_dir="mdl")

and lists the name in ``register_method(..., weights=("mdl",))``.  ``register_weights``
is the one way to declare a file; the declarations live in :data:`WEIGHTS`, a
:class:`fusionbench.registry.Registry` (the same listing and messages as methods;
declaring a name twice differently is an error; a plugin declares files in its
method module or through the ``fusionbench.weights`` entry-point group).

Files are kept in ``$FUSIONBENCH_HOME/weights/<method_dir>/<filename>`` (default
``$XDG_CACHE_HOME/fusionbench/weights``, else ``~/.cache/fusionbench/weights``; :mod:`fusionbench.config`).  ``fusionbench
fetch weights NAME`` downloads the official file and checks the pinned sha256;
``--from DIR`` copies it from a folder laid out like ``../shared/official``
(``<method_dir>/weights/<file>``) with the same check.  A file whose sha256 differs
is refused, and a cached file that no longer matches is fetched again.

**Verified at load.**  :func:`weights_path` (what methods call before loading)
checks the cached file against its pinned sha256 every time it is asked, memoised
by (path, size, mtime_ns), so a file changed on disk after the fetch — one flipped
byte included — is never used: :class:`ChecksumError` says in one line which file
and which command fetches it again.  :func:`verify_file` does the same for any
file, against a pinned digest or its sidecar ``<stem>.sha256`` beside ``<stem>.pth``
(the convention of ``fusionbench train --export`` and of committed weights;
:func:`write_sidecar` writes one, :func:`read_sidecar` and :func:`sidecar_token` read it).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .config import weights_dir
from .io import ATOMIC_TEMP_NAME, atomic_write, sha256_file
from .registry import Registry


@dataclass(frozen=True)
class WeightFile:
    """One pinned third-party file."""

    name: str
    filename: str
    sha256: str
    url: str
    method_dir: str
    description: str = ""


#: every declared weight file (the built-ins are declared by the method modules of ``fusionbench.methods``)
#: the weight files; a method plugin's module may declare those its methods load (docs/plugins.md), so the
#: methods' plugins are loaded with this registry's
WEIGHTS: Registry[WeightFile] = Registry("weights", "fusionbench.weights", "fusionbench.methods",
                                         also_loads=("fusionbench.methods",))


class WeightsMissingError(RuntimeError):
    """Raised when a method needs weights that are not in the cache."""


class ChecksumError(RuntimeError):
    """Raised when a weight file does not match its pinned sha256 (or its sidecar); one line, naming the file."""


def register_weights(
    name: str, *, filename: str, sha256: str, url: str, method_dir: str, description: str = ""
) -> WeightFile:
    """Declare a pinned weight file under ``name`` (an identical re-declaration is a no-op; a different one raises)."""
    wf = WeightFile(name, filename, sha256.lower(), url, method_dir, description)
    try:
        WEIGHTS.add(name, wf, wf)  # type: ignore[arg-type]
    except ValueError:
        if WEIGHTS.get(name).info != wf:
            raise ValueError(f"weights {name!r} already declared differently (by {WEIGHTS.get(name).source})") from None
    return wf


# --------------------------------------------------------------------------- verification
_VERIFIED: set[tuple[str, int, int, str]] = set()
#: the digest of each file found not to match (same keys as :data:`_VERIFIED`)
_MISMATCHED: dict[tuple[str, int, int, str], str] = {}

#: what to do about a bad committed file (no download exists for it)
COMMITTED_FIX = "reinstall fusionbench, or re-export the weights with `fusionbench train NAME --export DIR`"


def sidecar(path: str | Path) -> Path:
    """The sha256 sidecar of a weight file: ``<stem>.sha256`` beside ``<stem>.pth``."""
    return Path(path).with_suffix(".sha256")


def read_sidecar(path: str | Path) -> str:
    """The digest in the sidecar of ``path`` (first token of ``<stem>.sha256``); raises :class:`ChecksumError`."""
    side = sidecar(path)
    try:
        digest = side.read_text().split()[0].lower()
    except (OSError, IndexError):
        raise ChecksumError(f"{path}: no sha256 sidecar {side.name} beside it; refused") from None
    return digest


def write_sidecar(path: str | Path) -> str:
    """Write the sidecar of ``path`` (``<digest>  <name>`` and a newline, in ``<stem>.sha256``); returns the digest."""
    path = Path(path)
    digest = sha256_file(path)
    with atomic_write(sidecar(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")
    return digest


def sidecar_token(path: str | Path, n: int = 16) -> str:
    """The first ``n`` hex digits of the digest in the sidecar of ``path``, else ``"missing"`` (a cache token)."""
    try:
        return read_sidecar(path)[:n]
    except ChecksumError:
        return "missing"


def verify_file(path: str | Path, sha256: str | None = None, *, fix: str | None = None) -> Path:
    """Check ``path`` against ``sha256`` (or its ``<stem>.sha256`` sidecar) and return it.

    Memoised by (path, size, mtime_ns, digest): a file is hashed once per change.
    A missing file raises ``FileNotFoundError``; a mismatch raises
    :class:`ChecksumError` with one line naming the file and ``fix`` (the command
    that repairs it; :data:`COMMITTED_FIX` for committed weights by default).
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: weight file missing; {fix or COMMITTED_FIX}") from None
    expected = (sha256 or read_sidecar(path)).lower()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, expected)
    if key in _VERIFIED:
        return path
    digest = _MISMATCHED.get(key) or sha256_file(path)
    if digest != expected:
        _MISMATCHED[key] = digest  # asked again for every pair (a worker's availability check): hashed once
        raise ChecksumError(f"{path}: sha256 {digest} does not match the pinned {expected}; refused "
                            f"(corrupted or replaced): {fix or COMMITTED_FIX}")
    _VERIFIED.add(key)
    return path


def fetch_command(name: str) -> str:
    """The command that (re)fetches weights ``name`` (a TF checkpoint part is fetched with its group)."""
    group = name.split(".")[0]
    return f"fusionbench fetch weights {group if group not in WEIGHTS else name}"


def _known(name: str) -> WeightFile:
    try:
        return WEIGHTS.get(name).info
    except KeyError:
        raise WEIGHTS.with_plugin_failures(
            KeyError(f"unknown weights {name!r}; known: {', '.join(WEIGHTS.names()) or 'none'}")) from None


def cached_path(name: str) -> Path:
    """Where the file of ``name`` lives in the cache (it may not exist yet)."""
    wf = _known(name)
    return weights_dir() / wf.method_dir / wf.filename


def is_cached(name: str) -> bool:
    """Whether the file of weights ``name`` is in the cache (not verified; :func:`weights_path` checks its sha256)."""
    return cached_path(name).is_file()


def weights_path(name: str) -> Path:
    """Path of a cached weight file, verified against its pinned sha256.

    Raises :class:`WeightsMissingError` (not fetched) or :class:`ChecksumError`
    (changed since), each naming the fetch command.
    """
    path = cached_path(name)
    if not path.is_file():
        raise WeightsMissingError(missing_weights_message([name]) or f"weights {name!r} missing")
    return verify_file(path, _known(name).sha256, fix=f"run `{fetch_command(name)}` to fetch it again")


def expand_weight_names(name: str) -> list[str]:
    """``all`` → every declared file; a declared name → itself; a group such as ``sdnet`` → ``sdnet.*``."""
    names = WEIGHTS.names()
    if name == "all":
        return sorted(names)
    if name in names:
        return [name]
    group = sorted(n for n in names if n.startswith(name + "."))
    if not group:
        raise WEIGHTS.with_plugin_failures(
            KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(names)) or 'none'}"))
    return group


def missing_weights_message(names: Iterable[str]) -> str | None:
    """One line saying which weights are missing and how to fetch them, or ``None``."""
    missing = [n for n in names if not is_cached(n)]
    if not missing:
        return None
    cmds = "; ".join(sorted({fetch_command(n) for n in missing}))
    return f"weights not in cache ({', '.join(missing)}): run `{cmds}` (or add `--from DIR` for a local copy)"


def unusable_weights_error(names: Iterable[str]) -> RuntimeError | None:
    """Why weights ``names`` cannot be used here, as the exception a load would raise, or ``None``: not in the
    cache (:class:`WeightsMissingError`, :func:`missing_weights_message`'s line), or a cached file that no longer
    matches its pinned sha256 (the :class:`ChecksumError` of :func:`weights_path`, naming the file and the fetch
    command that repairs it).  The check is :func:`verify_file`'s, memoised in the process by the file's size and
    modification time, a mismatch too: each file is hashed once per process and change, so a method's availability
    can be asked for every pair.  Before session 32 only missing files counted, and a corrupted file made every
    pair of its method fail with the same error."""
    names = list(names)
    missing = missing_weights_message(names)
    if missing:
        return WeightsMissingError(missing)
    for name in names:
        try:
            weights_path(name)
        except (ChecksumError, WeightsMissingError) as exc:  # the second: removed since the look above
            return exc
        except FileNotFoundError as exc:
            return WeightsMissingError(str(exc))
    return None


def fetch_weights(name: str, *, from_dir: str | Path | None = None, force: bool = False) -> Path:
    """Put the weight file ``name`` in the cache and return its path.

    With ``from_dir`` the file is copied from ``from_dir/<method_dir>/weights/<filename>``;
    otherwise it is downloaded with pooch from the pinned URL.  Either way its
    sha256 must match the pinned value.  A cached file that matches is kept; one
    that does not (corrupted since) is fetched again.
    """
    wf = _known(name)
    target = cached_path(name)
    if target.is_file() and not force:
        try:
            return verify_file(target, wf.sha256)
        except ChecksumError:
            pass  # corrupted in the cache: fetch it again below
    target.parent.mkdir(parents=True, exist_ok=True)
    from .process_owner import sweep_stale

    sweep_stale(target.parent, ATOMIC_TEMP_NAME)  # a full-size copy a killed fetch left (session 32's chaos audit)
    if from_dir is not None:
        source = Path(from_dir) / wf.method_dir / "weights" / wf.filename
        if not source.is_file():
            raise FileNotFoundError(f"{source}: not found (expected <DIR>/{wf.method_dir}/weights/{wf.filename})")
        # checked where it is, so that a mismatch names the user's file, not the cache's temporary copy
        verify_file(source, wf.sha256, fix=f"it is not the pinned file of weights {wf.name!r}")
    with atomic_write(target) as tmp:  # the temporary copy is removed if anything below fails
        if from_dir is not None:
            shutil.copyfile(source, tmp)
            origin = str(source)
        else:
            import pooch

            pooch.retrieve(wf.url, known_hash=None, fname=tmp.name, path=tmp.parent, progressbar=False)
            origin = wf.url
        try:
            verify_file(tmp, wf.sha256, fix=f"the source of weights {wf.name!r} is not the pinned file")
        except ChecksumError as exc:
            raise ChecksumError(f"weights {wf.name!r} from {origin}: {str(exc).split(': ', 1)[1]}") from None
    return target


def all_weight_names() -> list[str]:
    """The names of all registered third-party weight files, sorted."""
    return sorted(WEIGHTS.names())
