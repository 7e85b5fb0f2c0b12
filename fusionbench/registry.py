"""One registry class for methods, metrics and datasets.

The shape follows timm (``register_model`` / ``create_model`` / ``list_models``
with fnmatch wildcards and natural sort) and pyiqa (entry-point plugin groups,
``KeyError`` with difflib suggestions).  Names are lower-case; variants of one
entry are spelled ``name.tag`` (``nsct.liu``, ``SSIM.vifb``).

A registry entry is an object (a function, a class, or any factory) plus a
metadata object.  The registry knows nothing about what the object does: the
method, metric and dataset layers give meaning to both.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
import traceback
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")


def natural_key(text: str) -> list[Any]:
    """Sort key that orders ``a2`` before ``a10`` (natural sort)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", text)]


@dataclass(frozen=True)
class PluginFailure:
    """A third-party plugin entry point that could not be imported."""

    group: str
    name: str
    value: str
    error: str
    traceback: str


@dataclass
class Entry(Generic[T]):
    """One registered name: the object and its metadata."""

    name: str
    obj: Callable[..., Any]
    info: T
    source: str = "builtin"  # "builtin" or the distribution/entry point that registered it


class Registry(Generic[T]):
    """A name → (object, metadata) map with wildcards, suggestions and plugins.

    Parameters
    ----------
    lowercase_names:
        Methods and datasets use lower-case snake names; metric presets keep
        the field's spelling (``AG``, ``Qabf``, ``SSIM.vifb``).
    kind:
        Human-readable kind ("method", "metric", "dataset"), used in messages.
    entry_point_group:
        The ``importlib.metadata`` entry-point group scanned once for plugins.
    builtin_module:
        Module imported before the first lookup so that the built-ins register
        themselves (``fusionbench.methods`` etc.).  Imported lazily so that
        ``import fusionbench`` stays light.
    """

    def __init__(
        self, kind: str, entry_point_group: str, builtin_module: str | None = None, *, lowercase_names: bool = True
    ) -> None:
        self.kind = kind
        self.lowercase_names = lowercase_names
        self.entry_point_group = entry_point_group
        self.builtin_module = builtin_module
        self._entries: dict[str, Entry[T]] = {}
        self._prefix_factories: dict[str, Entry[T]] = {}
        self._loaded = False
        self._loading = False
        self.plugin_failures: list[PluginFailure] = []
        self._current_source = "builtin"

    # ------------------------------------------------------------------ writing
    def add(self, name: str, obj: Callable[..., Any], info: T, *, override: bool = False) -> Entry[T]:
        """Register ``obj`` under ``name``; a duplicate name raises ``ValueError``."""
        name = name.strip()
        if not name or (self.lowercase_names and name != name.lower()):
            raise ValueError(f"{self.kind} names must be non-empty and lower-case: {name!r}")
        if name in self._entries and not override:
            raise ValueError(f"{self.kind} {name!r} is already registered (by {self._entries[name].source})")
        entry = Entry(name=name, obj=obj, info=info, source=self._current_source)
        self._entries[name] = entry
        return entry

    def add_prefix(self, prefix: str, obj: Callable[..., Any], info: T) -> None:
        """Register a parametrised family such as ``folder:PATH`` (``prefix='folder'``)."""
        self._prefix_factories[prefix] = Entry(name=prefix + ":", obj=obj, info=info, source=self._current_source)

    def remove(self, name: str) -> None:
        """Forget ``name`` (used by tests and by plugins that replace an entry)."""
        self._entries.pop(name, None)

    # ------------------------------------------------------------------ loading
    def ensure_loaded(self) -> None:
        """Import the built-ins and scan the entry-point group, once."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            if self.builtin_module:
                importlib.import_module(self.builtin_module)
            self._load_plugins()
            self._loaded = True
        finally:
            self._loading = False

    def _load_plugins(self) -> None:
        try:
            eps = importlib_metadata.entry_points(group=self.entry_point_group)
        except Exception:  # pragma: no cover - broken metadata
            return
        for ep in eps:
            dist = getattr(ep, "dist", None)
            self._current_source = f"plugin {dist.name if dist else ep.value}"
            try:
                loaded = ep.load()
                # An entry point may name a module (registers on import) or a
                # callable taking no argument that registers when called.
                if callable(loaded) and not isinstance(loaded, type) and getattr(loaded, "__fusionbench_register__", False):
                    loaded()
            except Exception as exc:  # a broken plugin is reported, never fatal
                self.plugin_failures.append(
                    PluginFailure(
                        group=self.entry_point_group,
                        name=ep.name,
                        value=ep.value,
                        error=f"{type(exc).__name__}: {exc}",
                        traceback=traceback.format_exc(),
                    )
                )
            finally:
                self._current_source = "builtin"

    # ------------------------------------------------------------------ reading
    def __contains__(self, name: object) -> bool:
        self.ensure_loaded()
        return isinstance(name, str) and (name in self._entries or self._prefix_of(name) is not None)

    def __iter__(self) -> Iterator[str]:
        self.ensure_loaded()
        return iter(self.names())

    def _prefix_of(self, name: str) -> Entry[T] | None:
        if ":" in name:
            return self._prefix_factories.get(name.split(":", 1)[0])
        return None

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``; unknown names raise ``KeyError`` with suggestions."""
        self.ensure_loaded()
        if name in self._entries:
            return self._entries[name]
        prefixed = self._prefix_of(name)
        if prefixed is not None:
            return prefixed
        close = difflib.get_close_matches(name, list(self._entries), n=5, cutoff=0.5)
        if not close:
            close = [n for n in self._entries if n.split(".")[0] == name.split(".")[0]][:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown {self.kind} {name!r}.{hint} (see `fusionbench list {self.kind}s`)")

    def names(self) -> list[str]:
        self.ensure_loaded()
        return sorted(self._entries, key=natural_key)

    def list(self, filter: str | Iterable[str] = "*", exclude_filters: str | Iterable[str] = ()) -> list[str]:
        """Names matching any of ``filter`` and none of ``exclude_filters`` (fnmatch, natural sort)."""
        self.ensure_loaded()
        includes = [filter] if isinstance(filter, str) else list(filter)
        excludes = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
        out = []
        for name in self.names():
            if any(fnmatch.fnmatchcase(name, pat) for pat in includes) and not any(
                fnmatch.fnmatchcase(name, pat) for pat in excludes
            ):
                out.append(name)
        return out

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]


def drop_none(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove ``None`` values before calling a factory (timm convention)."""
    return {k: v for k, v in kwargs.items() if v is not None}


__all__ = ["Entry", "PluginFailure", "Registry", "drop_none", "natural_key", "field"]
