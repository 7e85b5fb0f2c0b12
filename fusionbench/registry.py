"""One registry class and one decorator pattern for everything fusionbench looks up by name.

Methods, metric presets, datasets, weight files and trainers are each a :class:`Registry`:

=============  ==========================================  ===============================
registry       where                                       entry-point group (plugins)
=============  ==========================================  ===============================
methods        ``fusionbench.method_registry.METHODS``     ``fusionbench.methods``
metrics        ``fusionbench.metric_registry.METRICS``     ``fusionbench.metrics``
datasets       ``fusionbench.data.DATASETS``                ``fusionbench.datasets``
weights        ``fusionbench.weights.WEIGHTS``              ``fusionbench.weights``
trainers       ``fusionbench.train.spec.TRAINERS``          ``fusionbench.trainers``
=============  ==========================================  ===============================

The shape follows timm (``register_model`` / ``create_model`` / ``list_models`` with fnmatch
wildcards and natural sort) and pyiqa (entry-point plugin groups, ``KeyError`` with difflib
suggestions).  Variants of one entry are spelled ``name.tag`` (``nsct.liu``, ``SSIM.vifb``).

An entry is an object (a function, a class, a dataclass instance: any factory) plus a metadata
object; the registry gives meaning to neither.  The generic API, the same for every kind::

    THINGS: Registry[ThingInfo] = Registry("thing", "fusionbench.things", "fusionbench.things_builtin")

    @THINGS.register("name", info=ThingInfo(...))   # decorator; returns the object unchanged
    def make_thing(...): ...

    THINGS.add("other", obj, info)                  # the same without a decorator
    THINGS.get("name") -> Entry(name, obj, info, source)   # KeyError with suggestions
    THINGS.info("name"), THINGS.list("th*", exclude_filters="*.tag"), "name" in THINGS

Each layer wraps this in its public, typed function (``register_method``, ``register_metric``,
``register_dataset``, ``register_weights``, ``register_trainer``) that builds the metadata.

**Order and sources.**  Every entry records where it came from: ``builtin`` (registered while
fusionbench's own modules are imported, see :func:`builtin_registrations`), ``plugin <dist>``
(while an entry point is loaded) or ``user (<module>)`` (anything else: a script, a notebook, a
test).  Built-ins always come first: a user registration first imports the built-ins and the
plugins (:meth:`Registry.ensure_loaded`), a plugin registration first imports the built-ins.  So
registering a user entry named like a built-in is one ``ValueError`` naming both sources, and it
never breaks later lookups.  A name clash is an error in every registry (``override=True``
replaces on purpose); registering an equal object with equal metadata again is a no-op,
re-importing a built-in module (same source, same qualified object name) replaces its entries,
and so does a function or class defined again where it was first (same source, same module and
``__qualname__``: a notebook cell or a script run again, ``importlib.reload``), like Python's own
redefinition of a name.  Two modules (or two functions of one module) registering one name still clash.
"""
from __future__ import annotations

import contextlib
import contextvars
import difflib
import fnmatch
import importlib
import inspect
import os
import re
import sys
import threading
import traceback
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar


#: held while a registry scans its plugins (one lock for all registries), so that a thread that looks a name up
#: meanwhile waits for the plugins instead of finding the loading flag set and looking the name up in a
#: half-filled registry.  Re-entrant: loading one plugin may ask another registry for a lookup.  The wait is
#: bounded (:data:`PLUGIN_WAIT_S`): a thread that imports a plugin module itself while another thread's scan
#: imports the same module holds that module's import lock, which the scan waits for, and must not wait for
#: the scan in turn (a review found this deadlock with an unbounded lock); after the bound it goes on without
#: the plugins, as every thread did before session 30.  Built-ins need no lock of ours: every thread imports
#: the built-in module itself, and Python's import lock makes it wait for another thread's import to finish.
_PLUGINS_LOADING = threading.RLock()
#: seconds a lookup waits for another thread's plugin scan (:data:`_PLUGINS_LOADING`)
PLUGIN_WAIT_S = 60.0
#: per thread: the registries whose built-ins or plugins this thread is loading (re-entrant calls return)
_LOADING_HERE = threading.local()


def _loading_here(key: tuple[int, str]) -> bool:
    return key in getattr(_LOADING_HERE, "keys", ())


@contextlib.contextmanager
def _marked_loading(key: tuple[int, str]) -> Iterator[None]:
    keys = getattr(_LOADING_HERE, "keys", None)
    if keys is None:
        keys = _LOADING_HERE.keys = set()
    keys.add(key)
    try:
        yield
    finally:
        keys.discard(key)


def _new_plugins_lock() -> None:
    """In a forked child, a fresh :data:`_PLUGINS_LOADING` (the parent's may be held by a thread the child lacks)."""
    global _PLUGINS_LOADING
    _PLUGINS_LOADING = threading.RLock()


os.register_at_fork(after_in_child=_new_plugins_lock)

T = TypeVar("T")
F = TypeVar("F")
E = TypeVar("E", bound=BaseException)

BUILTIN = "builtin"

# The source of registrations happening now, per thread: a stack, because loading one registry's built-ins or
# plugins may register entries in another (a method module declares weights).  Per thread since session 30: a
# user's registration in one thread while another thread loads the built-ins was labelled ``builtin``.
_SOURCES_HERE = threading.local()


def _sources() -> list[str]:
    stack = getattr(_SOURCES_HERE, "stack", None)
    if stack is None:
        stack = _SOURCES_HERE.stack = []
    return stack


@contextlib.contextmanager
def registrations_from(source: str) -> Iterator[None]:
    """Label every registration this thread makes inside the block ``source`` (``plugin <dist>`` while a plugin
    loads)."""
    stack = _sources()
    stack.append(source)
    try:
        yield
    finally:
        stack.pop()


# What each plugin being loaded on this thread has added so far (innermost last): ``(table, key, previous
# entry or None)`` per addition, so that a plugin that fails half-way is taken out whole (session 37's audit: the
# methods a plugin registered before its error stayed registered and ran, though the run said it was skipped).
_JOURNALS_HERE = threading.local()


def _journals() -> list[tuple[str, list[tuple[dict[str, Any], str, Any, frozenset[str]]]]]:
    stack = getattr(_JOURNALS_HERE, "stack", None)
    if stack is None:
        stack = _JOURNALS_HERE.stack = []
    return stack


def module_being_imported(frame: Any) -> str | None:
    """The name of the module whose top level ``frame`` runs, if that module is being imported (in
    ``sys.modules`` with its spec's ``_initializing`` set: not a script's ``__main__``, nor code a tool runs with
    ``exec``); else ``None``.  Reads code objects and dicts only: no ``__getattr__`` or lazy-module hook runs, so
    it is safe in a signal handler (:func:`fusionbench.worker.unsafe_to_interrupt`)."""
    if frame.f_code.co_name != "<module>":
        return None
    name = frame.f_globals.get("__name__", "")
    try:
        spec = object.__getattribute__(sys.modules.get(name), "__dict__").get("__spec__")
        initializing = spec is not None and object.__getattribute__(spec, "__dict__").get("_initializing") is True
    except Exception:  # not in sys.modules, or an odd object there
        return None
    return name if initializing else None


def _modules_running() -> frozenset[str]:
    """The modules being imported whose top level is running on this thread now (:func:`module_being_imported`
    of the frames on the stack)."""
    names, frame = set(), sys._getframe(1)
    while frame is not None:
        name = module_being_imported(frame)
        if name is not None:
            names.add(name)
        frame = frame.f_back
    return frozenset(names)


def _journal_addition(table: dict[str, Any], key: str, previous: Any, source: str) -> None:
    """Note in the innermost plugin load of this thread (if any) that ``table[key]`` was set over ``previous``,
    with the modules whose top level was running then, if that plugin made the entry (``source`` its label):
    not a built-in module its import loaded on the way."""
    stack = _journals()
    if stack and stack[-1][0] == source:
        stack[-1][1].append((table, key, previous, _modules_running()))


@contextlib.contextmanager
def _undone_on_failure(source: str, *, imported: bool = False) -> Iterator[None]:
    """Run the block (a step of loading the plugin labelled ``source``); if it raises, take back the entries it
    added, in every registry, and put back what those entries replaced; then re-raise.  With ``imported`` (the
    block imports the plugin's module) only the entries made while a module ran whose import failed (it is
    out of ``sys.modules`` again), whatever they register (a function imported from elsewhere, a
    ``functools.partial``): a module imported whole on the way (the plugin's package ``__init__``) stays
    imported, is never imported again, and so keeps what it registered."""
    stack = _journals()
    journal: list[tuple[dict[str, Any], str, Any, frozenset[str]]] = []
    stack.append((source, journal))
    try:
        yield
    except BaseException:
        for table, key, previous, running in reversed(journal):
            if imported and all(name in sys.modules for name in running):
                continue
            if previous is None:
                table.pop(key, None)
            else:
                table[key] = previous
        raise
    finally:
        stack.pop()


def builtin_registrations() -> contextlib.AbstractContextManager[None]:
    """Label every registration made inside the block ``builtin`` (fusionbench's own modules)."""
    return registrations_from(BUILTIN)


def current_source(module: str | None = None) -> str:
    """The source a registration made now from ``module`` gets.

    Inside :func:`builtin_registrations` or while a plugin loads, that context's label;
    otherwise ``builtin`` for fusionbench's own modules (``fusionbench`` or ``fusionbench.*``,
    e.g. ``fusionbench.methods.basic`` imported directly) and ``user (<module>)`` for the rest.
    """
    stack = _sources()
    if stack:
        return stack[-1]
    if module and (module == "fusionbench" or module.startswith("fusionbench.")):
        return BUILTIN
    return f"user ({module})" if module else "user"


def natural_key(text: str) -> list[Any]:
    """Sort key that orders ``a2`` before ``a10`` (natural sort)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", text)]


def _qualname(obj: object) -> str | None:
    qual = getattr(obj, "__qualname__", None)
    mod = getattr(obj, "__module__", None)
    return f"{mod}.{qual}" if isinstance(qual, str) and isinstance(mod, str) else None


def _equal(a: object, b: object) -> bool:
    """``a is b`` or ``a == b`` (an object whose comparison fails or is not a bool counts as different)."""
    if a is b:
        return True
    try:
        return (a == b) is True
    except Exception:
        return False


def _redefinition(existing: Entry[Any], obj: object, source: str) -> bool:
    """Whether ``obj`` registered from ``source`` is a new version of ``existing``'s object, which it then replaces.

    A re-imported built-in module: the same source (``builtin``) and qualified name (``module.qualname``), for any
    object (a manifest's factory is named after its file).  Otherwise a function or class defined again (a
    notebook cell run twice, ``importlib.reload``): a ``def`` or ``class`` statement run again gives a new object
    of the same module and ``__qualname__``, from the same source; an instance or a ``functools.partial`` (whose
    qualified name, if any, is set by hand) never is one.
    """
    qual = _qualname(existing.obj)
    if qual is None or qual != _qualname(obj) or existing.source != source:
        return False
    if source == BUILTIN:
        return True
    # a lambda or a function made by a factory (``<lambda>``, ``f.<locals>.g``) is not named by a statement
    return "<" not in qual and all(inspect.isfunction(o) or inspect.isclass(o) for o in (existing.obj, obj))


def _registering_module(obj: object) -> str | None:
    """The module that registers ``obj``: its own module for a function or class; for an instance
    (a metadata dataclass such as a weight file or a train spec), the first caller outside this
    module and the module that defines the instance's class (the layer's ``register_*`` wrapper)."""
    if _qualname(obj) is not None:
        return getattr(obj, "__module__", None)
    plumbing = {__name__, type(obj).__module__}
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in plumbing:
        frame = frame.f_back
    return frame.f_globals.get("__name__") if frame is not None else None


@dataclass(frozen=True)
class PluginFailure:
    """A third-party plugin entry point that could not be imported."""

    group: str
    name: str
    value: str
    error: str
    traceback: str

    def line(self) -> str:
        """One line: which plugin failed and how (``fusionbench list``, notes on unknown-name errors)."""
        return f"plugin {self.name} ({self.value}) failed to load and was skipped: {self.error.splitlines()[0]}"


@dataclass
class Entry(Generic[T]):
    """One registered name: the object, its metadata and where it came from."""

    name: str
    obj: Any
    info: T
    source: str = BUILTIN  # "builtin", "plugin <distribution>" or "user (<module>)"
    #: the source of the built-in or plugin entry a user entry replaced with ``override=True`` (``""``: none), so
    #: that a method's cache key tells the override from what it replaced (:meth:`FusionMethod.cache_key`)
    replaces: str = ""


#: a registered name: a letter, digit or ``_``, then letters, digits and ``_ . + -`` (Unicode letters included)
_NAME = re.compile(r"\w[\w.+-]*")


#: every registry by its entry-point group (the first made for a group), for :attr:`Registry.also_loads`
_REGISTRIES: dict[str, "Registry[Any]"] = {}


class Registry(Generic[T]):
    """A name → (object, metadata) map with wildcards, suggestions, plugins and ordered loading.

    Parameters
    ----------
    kind:
        Human-readable kind ("method", "metric", "dataset", "weights", "trainer"), used in messages.
    entry_point_group:
        The ``importlib.metadata`` entry-point group scanned once for plugins.  An entry point
        names a module (it registers on import) or a callable marked
        ``__fusionbench_register__ = True`` (called once after loading).
    builtin_module:
        Module imported (as built-in registrations) before the first lookup or the first
        non-built-in registration, so that the built-ins register themselves
        (``fusionbench.methods`` etc.).  Imported lazily: ``import fusionbench`` stays light.
    also_loads:
        The entry-point groups of other registries whose plugins may register entries of this kind too; those
        registries are loaded after this one's own plugins (weights and metrics: ``fusionbench.methods``, whose
        plugin modules may declare the weights their methods load or a metric beside a method; session 37's
        audit found ``fusionbench fetch weights NAME`` answering "unknown weights" for weights declared, as
        documented, in a method plugin's module).  Named by group, found among the registries created so far
        (``import fusionbench`` creates the methods' and metrics'), so that their modules need not import
        each other.
    lowercase_names:
        Methods and datasets use lower-case names; metric presets keep the field's spelling
        (``AG``, ``Qabf``, ``SSIM.vifb``).
    """

    def __init__(
        self, kind: str, entry_point_group: str, builtin_module: str | None = None, *, lowercase_names: bool = True,
        also_loads: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.also_loads = also_loads
        _REGISTRIES.setdefault(entry_point_group, self)
        self.lowercase_names = lowercase_names
        self.entry_point_group = entry_point_group
        self.builtin_module = builtin_module
        self._entries: dict[str, Entry[T]] = {}
        self._prefix_factories: dict[str, Entry[T]] = {}
        self._builtins_loaded = False
        self._plugins_loaded = False
        self.plugin_failures: list[PluginFailure] = []
        #: Names people use for something registered under another name (or not at all), and what to say when one
        #: is looked up: ``{"Qw": "MEFB's 'Qw' is Piella's Q_E ..."}``; matched ignoring case, ``_``, ``-`` and ``/``.
        self.hints: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    # ------------------------------------------------------------------ writing
    def _check_name(self, name: str) -> str:
        """``name`` stripped, or ``ValueError``: a name is a letter, digit or ``_``, then letters, digits and ``_ . + -``
        (lower-case for methods).  It becomes a folder of the fused-image cache and of ``export-fused``, a
        cell of HTML, Markdown, LaTeX and CSV tables and a figure label: a ``/``, ``..``, a space, a newline or
        markup in it wrote outside the cache or broke the report (an untrusted-input audit, session 31)."""
        name = name.strip()
        if not name or (self.lowercase_names and name != name.lower()):
            raise ValueError(f"{self.kind} names must be non-empty and lower-case: {name!r}")
        if not _NAME.fullmatch(name):
            raise ValueError(f"{self.kind} name {name!r}: use letters, digits and _ . + - only, starting with a "
                             "letter, digit or _")
        return name

    def _before_adding(self, module: str | None) -> str:
        """Load what must come before a registration from ``current_source(module)``; return that source."""
        source = current_source(module)
        if source != BUILTIN:
            if source.startswith("plugin "):
                self._load_builtins()
            else:
                self.ensure_loaded(wait=False)
        return source

    def _clash(self, name: str, existing: Entry[T], source: str) -> ValueError:
        return ValueError(
            f"{self.kind} {name!r} is already registered by {existing.source}; {source} cannot register it "
            f"again (choose another name, or pass override=True to replace it on purpose)"
        )

    def add(self, name: str, obj: Any, info: T, *, override: bool = False, module: str | None = None) -> Entry[T]:
        """Register ``obj`` with metadata ``info`` under ``name`` and return the entry.

        ``module`` is the registering module (default: the object's ``__module__`` for a function
        or class, the calling module for an instance); it decides the source label when no
        loading context is active (see :func:`current_source`).  A name that is already registered
        raises ``ValueError`` naming both sources, unless ``override=True``, or the same object
        and metadata are registered again (a no-op), or a re-imported built-in module registers
        its own object again, or the function or class is defined again where it was first (a
        notebook cell run again: same source, module and ``__qualname__``); those two replace it.
        """
        name = self._check_name(name)
        source = self._before_adding(module or _registering_module(obj))
        existing = self._entries.get(name)
        if existing is not None and not override:
            if _equal(existing.obj, obj) and _equal(existing.info, info):
                return existing  # the identical entry again (a module imported twice): a no-op
            if not _redefinition(existing, obj, source):
                raise self._clash(name, existing, source)
        replaces = ""
        if existing is not None and source.startswith("user"):  # an override, or a redefinition of one
            replaces = existing.replaces if existing.source.startswith("user") else existing.source
        entry: Entry[T] = Entry(name=name, obj=obj, info=info, source=source, replaces=replaces)
        self._entries[name] = entry
        _journal_addition(self._entries, name, existing, source)
        return entry

    def register(self, name: str | None = None, *, info: T | None = None, override: bool = False,
                 module: str | None = None) -> Callable[[F], F]:
        """Decorator factory: ``@REG.register("name", info=...)`` registers the decorated object.

        ``name`` defaults to the object's ``__name__`` (lower-cased where names are);
        ``info`` is the metadata (``None``: the object is its own metadata).  The object is
        returned unchanged, so decorators stack.
        """

        def decorator(obj: F) -> F:
            reg_name = name or getattr(obj, "__name__", "")
            if self.lowercase_names:
                reg_name = reg_name.lower()
            self.add(reg_name, obj, obj if info is None else info, override=override, module=module)  # type: ignore[arg-type]
            return obj

        return decorator

    def add_prefix(self, prefix: str, obj: Any, info: T, *, override: bool = False,
                   module: str | None = None) -> Entry[T]:
        """Register a parametrised family such as ``folder:PATH`` (``prefix='folder'``), by the rules of :meth:`add`:
        a family already registered raises unless ``override=True``, the identical entry again, a re-imported
        built-in module, or the factory defined again where it was first (a notebook cell run again).  (Until
        session 29 only the built-in case replaced: a cell registering a family raised when run again.)"""
        source = self._before_adding(module or _registering_module(obj))
        existing = self._prefix_factories.get(prefix)
        if existing is not None and not override:
            if _equal(existing.obj, obj) and _equal(existing.info, info):
                return existing
            if not _redefinition(existing, obj, source):
                raise self._clash(prefix + ":", existing, source)
        entry: Entry[T] = Entry(name=prefix + ":", obj=obj, info=info, source=source)
        self._prefix_factories[prefix] = entry
        _journal_addition(self._prefix_factories, prefix, existing, source)
        return entry

    def adopt(self, entry: Entry[T]) -> Entry[T]:
        """Add ``entry`` as it was registered in another process (:mod:`fusionbench.definitions`: a user
        registration sent with a task); the entry in effect, its source label kept.  It replaces a user entry (the
        other process registered it again, in another version).  A built-in or plugin entry of that name is kept:
        a user override of it takes effect per task, through :func:`task_entries`, never for the whole process
        (a Dask worker's threads may run another run's tasks at the same time)."""
        self.ensure_loaded()
        existing = self._entries.get(entry.name)
        if existing is not None and not existing.source.startswith("user"):
            return existing
        self._entries[entry.name] = entry
        return entry

    def _task_entry(self, name: str) -> Entry[T] | None:
        """The entry :func:`task_entries` put in effect for ``name`` in this context (this task), if any."""
        overlay = _TASK_ENTRIES.get()
        return overlay.get((id(self), name)) if overlay else None

    def remove(self, name: str) -> None:
        """Forget ``name`` (used by tests and by plugins that replace an entry)."""
        self._entries.pop(name, None)

    # ------------------------------------------------------------------ loading
    def _load_builtins(self) -> None:
        """Import the built-in module (its registrations labelled ``builtin``), once; re-entrant.  A thread that
        comes while another imports it waits in Python's import lock for that import to finish."""
        key = (id(self), "builtins")
        if self._builtins_loaded or _loading_here(key):
            return
        with _marked_loading(key):
            if self.builtin_module:
                with builtin_registrations():
                    module = importlib.import_module(self.builtin_module)
                if getattr(getattr(module, "__spec__", None), "_initializing", False):
                    # asked from inside that module's own import, by this thread (the methods' modules register
                    # weights): not loaded yet, or a thread that looks up after this would find it half-filled
                    return
            self._builtins_loaded = True

    def ensure_loaded(self, *, wait: bool = True) -> None:
        """Import the built-ins, then scan the entry-point group, once (idempotent, re-entrant; from several
        threads, a lookup waits for the built-ins, and for another thread's plugin scan up to
        :data:`PLUGIN_WAIT_S`; with ``wait=False``, as a registration asks, not for the scan)."""
        if self._builtins_loaded and self._plugins_loaded:
            return
        self._load_builtins()
        key = (id(self), "plugins")
        if self._plugins_loaded or _loading_here(key):
            return
        if not _PLUGINS_LOADING.acquire(timeout=PLUGIN_WAIT_S if wait else 0):
            # another thread scans: a registration goes on (its module may be the plugin that scan imports, which
            # waits for this thread's import to finish); a lookup after the bound, stuck so, too
            return
        try:
            if self._plugins_loaded:
                return
            with _marked_loading(key):
                self._load_plugins()
                self._plugins_loaded = True
        finally:
            _PLUGINS_LOADING.release()
        for group in self.also_loads:
            other = _REGISTRIES.get(group)
            if other is not None:
                other.ensure_loaded(wait=wait)

    def _load_plugins(self) -> None:
        try:
            eps = importlib_metadata.entry_points(group=self.entry_point_group)
        except Exception as exc:  # broken metadata of an installed distribution: reported, never fatal
            self.plugin_failures.append(
                PluginFailure(group=self.entry_point_group, name="(entry points)", value=self.entry_point_group,
                              error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()))
            return
        for ep in eps:
            dist = getattr(ep, "dist", None)
            label = f"plugin {dist.name if dist else ep.value}"
            with registrations_from(label):
                try:
                    # a plugin that fails is taken out whole, what it added before its error too
                    with _undone_on_failure(label, imported=True):
                        loaded = ep.load()
                    if callable(loaded) and not isinstance(loaded, type) \
                            and getattr(loaded, "__fusionbench_register__", False):
                        with _undone_on_failure(label):
                            loaded()
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # a broken plugin is reported, never fatal: sys.exit() at its import too
                    self.plugin_failures.append(
                        PluginFailure(group=self.entry_point_group, name=ep.name, value=ep.value,
                                      error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
                    )

    # ------------------------------------------------------------------ reading
    def __contains__(self, name: object) -> bool:
        self.ensure_loaded()
        return isinstance(name, str) and (name in self._entries or self._prefix_of(name) is not None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.ensure_loaded()
        return len(self._entries)

    def _prefix_of(self, name: str) -> Entry[T] | None:
        if ":" in name:
            return self._prefix_factories.get(name.split(":", 1)[0])
        return None

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``; unknown names raise ``KeyError`` with suggestions."""
        self.ensure_loaded()
        task_entry = self._task_entry(name)
        if task_entry is not None:
            return task_entry
        if name in self._entries:
            return self._entries[name]
        prefixed = self._prefix_of(name)
        if prefixed is not None:
            return prefixed
        raise self.with_plugin_failures(
            KeyError(f"unknown {self.kind} {name!r}.{self.suggestion(name)} (see `fusionbench list {self.kind}s`)"))

    def find(self, name: str) -> Entry[T] | None:
        """The entry for ``name`` as :meth:`get` resolves it (prefix families included), or ``None`` if unknown.

        For callers that fall back when a name is not registered (a stored result whose plugin is no longer
        installed): no suggestions are computed and nothing is raised.
        """
        self.ensure_loaded()
        entry = self._task_entry(name) or self._entries.get(name)
        return entry if entry is not None else self._prefix_of(name)

    def suggestion(self, name: str) -> str:
        """What to say after "unknown name": its :attr:`hints` entry, else the registered names that differ only in
        case, ``_``, ``-`` or ``/`` (``ssim`` → SSIM, ``Q_CV`` → Qcv, ``QAB/F`` → Qabf), else close names; ``""`` when there is none."""
        self.ensure_loaded()
        hint = next((text for key, text in self.hints.items() if _folded(key) == _folded(name)), None)
        if hint:
            return f" {hint}"
        close = [n for n in self._entries if _folded(n) == _folded(name)]
        close = close or difflib.get_close_matches(name, list(self._entries), n=5, cutoff=0.5)
        if not close:
            close = [n for n in self._entries if n.split(".")[0] == name.split(".")[0]][:5]
        return f" Did you mean: {', '.join(close)}?" if close else ""

    def info(self, name: str) -> T:
        """The metadata of ``name`` (``KeyError`` with suggestions if unknown)."""
        return self.get(name).info

    def with_plugin_failures(self, exc: E) -> E:
        """``exc`` with one note (``add_note``) per plugin that failed to load, of this registry and of those it
        :attr:`also_loads` (a method plugin's module may declare metrics and weights): the name looked up may be
        one it would have registered.  For "unknown name" and "no match" errors."""
        others = (_REGISTRIES.get(group) for group in self.also_loads)
        for registry in (self, *(other for other in others if other is not None and other is not self)):
            for failure in registry.plugin_failures:
                exc.add_note(failure.line())
        return exc

    def names(self) -> list[str]:
        """Every registered name, natural-sorted (prefix families such as ``folder:`` excluded)."""
        self.ensure_loaded()
        return sorted(self._entries, key=natural_key)

    def list(self, filter: str | Iterable[str] = "*", exclude_filters: str | Iterable[str] = ()) -> list[str]:
        """Names matching any of ``filter`` and none of ``exclude_filters`` (fnmatch ignoring case: ``ssim*``
        lists the SSIM presets; natural sort). A comma in a pattern separates patterns (``"dwt,average"``), as
        ``--methods`` reads them (no name holds one; until session 39 such a text matched nothing)."""
        includes = _patterns(filter)
        excludes = _patterns(exclude_filters)
        return [
            name for name in self.names()
            if any(matches(name, pat) for pat in includes) and not any(matches(name, pat) for pat in excludes)
        ]

    def entries(self) -> list[Entry[T]]:
        """Every entry, in :meth:`names` order."""
        return [self._entries[n] for n in self.names()]


#: the entries one task puts in effect over the registries' own (:func:`task_entries`), by (registry id, name)
_TASK_ENTRIES: contextvars.ContextVar[dict[tuple[int, str], Any] | None] = contextvars.ContextVar(
    "fusionbench_task_entries", default=None)


@contextlib.contextmanager
def task_entries(entries: Iterable[tuple["Registry[Any]", Entry[Any]]]) -> Iterator[None]:
    """Within the block (and the threads it starts with a copied context, as the metrics' pool does), each
    ``(registry, entry)`` is what ``registry.get(entry.name)`` and ``find`` return: a client's ``override=True`` of
    a built-in or plugin method or metric, for the one task that carries it (:func:`fusionbench.definitions.installed`).
    A context variable, not the shared registry: a Dask worker's threads may run tasks of another run, with
    or without that override, at the same time (session 39's review)."""
    overlay = {(id(registry), entry.name): entry for registry, entry in entries}
    token = _TASK_ENTRIES.set(overlay or None)
    try:
        yield
    finally:
        _TASK_ENTRIES.reset(token)


def _patterns(given: str | Iterable[str]) -> list[str]:
    """Patterns as :meth:`Registry.list` takes them: one or several, each possibly a comma-separated list."""
    items = [given] if isinstance(given, str) else list(given)
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


def matches(name: str, pattern: str) -> bool:
    """fnmatch ignoring case: the one rule for name patterns (registry listings, ``export-fused`` selections)."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def _folded(name: str) -> str:
    """``name`` lower-cased without ``_``, ``-`` and ``/``: the spelling variants of one name (``Q_CV``, ``Qcv``;
    ``QAB/F``, ``Qabf``) compare equal."""
    return name.lower().replace("_", "").replace("-", "").replace("/", "")


def drop_none(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove ``None`` values before calling a factory (timm convention)."""
    return {k: v for k, v in kwargs.items() if v is not None}


__all__ = ["BUILTIN", "Entry", "PluginFailure", "Registry", "builtin_registrations", "current_source", "drop_none",
           "matches", "natural_key", "registrations_from"]
