"""Fusion methods: metadata, registration, creation and listing.

A method is a callable plus metadata, registered where it is defined::

    @register_method("average", display_name="Average", family="pixel")
    def average(a, b):
        return (a + b) / 2

Call convention (``colour="luma"``, the default): ``fn(a, b, **params)`` gets
float32 arrays in [0, 1], ``a`` H×W (MRI or visible) and ``b`` H×W (the BT.601
luma of a colour PET/SPECT, or grey CT/IR), and returns the fused H×W image in
[0, 1] (float) or as uint8.  A ``colour="own"`` method gets ``a`` H×W and ``b``
as loaded (H×W or H×W×3, float32 in [0, 1]) and returns H×W or H×W×3.

A class may be registered instead of a function: ``cls(**params)`` is built on
first use and its instance is called as ``instance(a, b)``; that is where a deep
method loads its weights (once per process).

Variants are separate names, ``name.tag``, registered by stacking the decorator
with other ``params``.  ``version`` is part of the cache key: bump it whenever
the output of a method changes.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal

import numpy as np

from .registry import Registry, drop_none

ColourHandling = Literal["luma", "own"]


#: the tasks ``trained_for=("medical",)`` stands for
MEDICAL_TASKS: tuple[str, ...] = ("MRI-PET", "MRI-SPECT", "MRI-CT")


@dataclass(frozen=True)
class MethodInfo:
    """Metadata of a registered method (printed in tables and stored with results)."""

    name: str
    display_name: str
    family: str = "other"
    citation: str = ""
    colour: ColourHandling = "luma"
    weights: tuple[str, ...] = ()
    deterministic: bool = True
    version: str = "1"
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    uses_torch: bool = False
    trainable: bool = False
    tasks: tuple[str, ...] = ()  # the tasks it applies to (e.g. a model trained for MRI-CT); empty = all
    #: the tasks its learned weights were trained for, where they were trained for some only (``"medical"`` =
    #: the MRI-PET, MRI-SPECT and MRI-CT family); empty = not task-specific, not stated, or no weights.  Unlike
    #: ``tasks`` it restricts nothing: a report names the method where it runs on another task's pairs
    trained_for: tuple[str, ...] = ()
    #: the data the learned weights were trained on, in a few words, where a reader of a results table needs it
    #: (third-party weights trained on undisclosed pairs of a benchmark dataset, or on another kind of image);
    #: a report's weights footnote prints it. Empty: not stated (fusionbench's own weights have a provenance file)
    trained_on: str = ""

    def applies_to(self, task: str) -> bool:
        """Whether the runner should run this method on pairs of ``task`` (``MRI-PET``, ``IR-VIS``, ...)."""
        return not self.tasks or task in self.tasks

    def trained_for_task(self, task: str | None) -> bool:
        """Whether the weights were trained for ``task`` (true when :attr:`trained_for` is empty, or the task is
        unknown)."""
        return trained_for_task(self.trained_for, task)


def trained_for_task(trained_for: tuple[str, ...], task: str | None) -> bool:
    """Whether weights trained for ``trained_for`` (``MethodInfo.trained_for``; ``"medical"`` stands for
    :data:`MEDICAL_TASKS`) were trained for ``task``: true when ``trained_for`` is empty or the task unknown."""
    if not trained_for or not task:
        return True
    return task in trained_for or ("medical" in trained_for and task in MEDICAL_TASKS)


#: ``trained_on`` of third-party weights trained on Harvard AANLIB pairs their authors did not list (SDNet's
#: medical model, MATR): the benchmark cannot exclude them from its test split, and the footnote says so
UNLISTED_HARVARD = ("Harvard AANLIB pairs chosen by the authors and not listed, so some of the Harvard test pairs "
                    "may be among them")

METHODS: Registry[MethodInfo] = Registry("method", "fusionbench.methods", "fusionbench.methods")


def _names(field_name: str, value: Iterable[str]) -> tuple[str, ...]:
    """``value`` as a tuple of names; a lone string is refused (session 37's audit: ``tasks="MRI-PET"`` became the
    tasks 'M', 'R', 'I', …, and the method ran on no pair)."""
    if isinstance(value, str):
        raise TypeError(f"{field_name} takes several names, e.g. {field_name}=({value!r},), not the string {value!r}")
    return tuple(value)


def register_method(
    name: str | None = None,
    *,
    display_name: str | None = None,
    family: str = "other",
    citation: str = "",
    colour: ColourHandling = "luma",
    weights: Iterable[str] = (),
    deterministic: bool = True,
    version: str = "1",
    params: dict[str, Any] | None = None,
    description: str | None = None,
    uses_torch: bool = False,
    trainable: bool = False,
    tasks: Iterable[str] = (),
    trained_for: Iterable[str] = (),
    trained_on: str = "",
    override: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a fusion function or class under ``name``.

    ``name`` defaults to the object's ``__name__``; ``params`` are the default
    keyword arguments of this registered name (a variant differs only there).
    ``tasks`` restricts the runner to pairs of those tasks (a model trained for
    MRI-CT only, say); ``fusionbench.fuse`` still accepts any pair.  ``trained_for`` says which tasks the
    learned weights were trained for, where only some (``"medical"`` for the MRI-PET/SPECT/CT family): it
    restricts nothing, and a report's weights footnote names the method on other tasks' pairs.  ``trained_on``
    says in a few words what data the weights were trained on (the footnote prints it).
    Returns the object unchanged, so decorators can be stacked.
    """
    if colour not in ("luma", "own"):
        raise ValueError(f"colour must be 'luma' or 'own', not {colour!r}")
    weights, tasks, trained_for = (_names(field_, value) for field_, value in
                                   (("weights", weights), ("tasks", tasks), ("trained_for", trained_for)))

    def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
        reg_name = (name or obj.__name__).lower()
        doc = (obj.__doc__ or "").strip().splitlines()
        info = MethodInfo(
            name=reg_name,
            display_name=display_name or reg_name,
            family=family,
            citation=citation,
            colour=colour,
            weights=tuple(weights),
            deterministic=deterministic,
            version=str(version),
            params=dict(params or {}),
            description=description if description is not None else (doc[0] if doc else ""),
            uses_torch=uses_torch,
            trainable=trainable,
            tasks=tuple(tasks),
            trained_for=tuple(trained_for),
            trained_on=trained_on,
        )
        takes = accepted_params(obj, {})  # None: **kwargs, or no signature to read
        unknown = sorted(set(info.params) - takes) if takes is not None else []
        if unknown:  # every create_method and every pair would fail with a TypeError (session 39's API audit)
            raise ValueError(f"method {reg_name!r}: params {', '.join(map(repr, unknown))} are not parameters of "
                             f"{getattr(obj, '__qualname__', obj)!r} (it takes {', '.join(sorted(takes)) or 'none'})")
        METHODS.add(reg_name, obj, info, override=override)
        return obj

    return decorator


class FusionMethod:
    """A created method: registered callable + metadata + the parameters in force."""

    def __init__(self, name: str, obj: Callable[..., Any], info: MethodInfo, params: dict[str, Any],
                 replaces: str = ""):
        self.name = name
        self.info = info
        self.params = params
        self.replaces = replaces  # the built-in or plugin entry this user override replaced ("": none)
        self._obj = obj
        self._instance: Any = None
        #: one build of the instance when several threads first call a shared method at once (until session 30
        #: four threads built four instances, each reading and verifying the weights)
        self._build_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FusionMethod({self.name!r}, params={self.params})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a process pool, joblib, ``dask.delayed``) and copied without its build lock, which cannot be."""
        state = dict(self.__dict__)
        state.pop("_build_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build_lock = threading.Lock()

    def with_params(self, **overrides: Any) -> "FusionMethod":
        """A copy with ``overrides`` of its parameters, checked as :func:`create_method` checks them (``None``
        dropped, an unknown name a ``TypeError``); this method itself is unchanged."""
        params = {**self.params, **checked_overrides(self.name, self._obj, self.info.params, overrides)}
        return FusionMethod(self.name, self._obj, self.info, params, replaces=getattr(self, "replaces", ""))

    @property
    def is_class(self) -> bool:
        """Whether the registered callable is a class (built once, then called) rather than a fusion function."""
        return isinstance(self._obj, type)

    @property
    def instance(self) -> Any:
        """The built instance of a class-based method (built on first use)."""
        if not self.is_class:
            return None
        if self._instance is None:
            with self._build_lock:
                if self._instance is None:
                    self._instance = self._obj(**self.params)
        return self._instance

    def unavailable_reason(self) -> str | None:
        """Why the method cannot run here (missing or corrupted third-party or committed weights), or ``None``:
        the one line of :meth:`unavailable_error`."""
        error = self.unavailable_error()
        return None if error is None else str(error)

    def unavailable_error(self) -> Exception | None:
        """Why the method cannot run here, as the exception loading it would raise, or ``None``.

        Third-party weights are checked in the weights cache, present and matching their pinned sha256
        (:func:`fusionbench.weights.unusable_weights_error`: a :class:`~fusionbench.weights.WeightsMissingError`
        or :class:`~fusionbench.weights.ChecksumError`, each file hashed once per process and change); a
        registered object may also define ``unavailable_error(**params) -> Exception | None`` (committed weights
        absent or corrupted: mopa, SwinFusion) or ``unavailable_reason(**params) -> str | None`` (a
        :class:`RuntimeError` of that line).  :func:`fusionbench.fuse` raises it; the runner skips the method with
        its line.
        """
        if self.info.weights:
            from .weights import unusable_weights_error

            error = unusable_weights_error(self.info.weights)
            if error is not None:
                return error
        hook = getattr(self._obj, "unavailable_error", None)
        if callable(hook):
            return hook(**self.params)
        hook = getattr(self._obj, "unavailable_reason", None)
        reason = hook(**self.params) if callable(hook) else None
        return RuntimeError(reason) if reason else None

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.is_class:
            return self.instance(a, b)
        return self._obj(a, b, **self.params)

    def cache_key(self) -> str:
        """Stable key of (name, version, parameters[, weights token]) for the output cache.

        A registered object may define ``cache_token(**params) -> str`` (e.g. the
        sha256 of committed trained weights), so that retrained weights never
        reuse outputs of the old ones.
        """
        hook = getattr(self._obj, "cache_token", None)
        token = hook(**self.params) if callable(hook) else None
        blob = json.dumps(
            {"name": self.name, "version": self.info.version, "params": self.params,
             **({"token": token} if token else {}),
             # a user override is not what it replaced, whatever its version: never its cached images, nor a
             # worker's built instance of it (every other key unchanged)
             **({"replaces": self.replaces} if getattr(self, "replaces", "") else {})},
            sort_keys=True,
            default=stable_repr,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def stable_repr(value: Any) -> Any:
    """How :meth:`FusionMethod.cache_key` writes a parameter JSON cannot: the same in every process and run.

    A function or class by its ``module.qualname`` (its ``repr`` holds a memory address); a set by its sorted
    items (its order follows the per-process string hash); an object whose ``repr`` is the default one by its
    class and fields (so two differently configured instances never share a key); anything else by its ``repr``
    without ``" at 0x…"`` addresses.  Values JSON writes itself never reach this, so keys of methods whose
    parameters are numbers, strings, lists and dicts are unchanged.  A key that differs between processes made
    every resume fuse again, and a worker refuses a task whose key is not its own
    (:class:`fusionbench.worker.MethodMismatch`)."""
    import re

    if isinstance(value, (set, frozenset)):  # each item as JSON text (a frozenset item too), then sorted
        return sorted(json.dumps(v, sort_keys=True, default=stable_repr) for v in value)
    qualname = getattr(value, "__qualname__", None)
    if callable(value) and isinstance(qualname, str):
        return f"{getattr(value, '__module__', '?')}.{qualname}"
    text = repr(value)
    if " at 0x" in text and hasattr(value, "__dict__"):  # a default repr says nothing of the state: its fields do
        kind = type(value)
        try:
            return f"{kind.__module__}.{kind.__qualname__}({json.dumps(vars(value), sort_keys=True, default=stable_repr)})"
        except (TypeError, ValueError, RecursionError):  # a field JSON cannot write even so, or a cycle
            pass
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def create_method(name: str, **overrides: Any) -> FusionMethod:
    """Create the registered method ``name`` with ``overrides`` of its default params.

    Unknown names raise ``KeyError`` with close suggestions; ``None`` overrides
    are dropped (so CLI defaults do not mask presets).
    """
    entry = METHODS.get(name)
    params = {**entry.info.params, **checked_overrides(entry.name, entry.obj, entry.info.params, overrides)}
    return FusionMethod(entry.name, entry.obj, entry.info, params, replaces=getattr(entry, "replaces", ""))


def checked_overrides(name: str, obj: Any, registered: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` without ``None`` values; ``TypeError`` naming the method's parameters for a name it does not
    take (:func:`accepted_params`)."""
    overrides = drop_none(overrides)
    accepted = accepted_params(obj, registered)
    unknown = sorted(set(overrides) - accepted) if accepted is not None else []
    if unknown:
        raise TypeError(f"method {name!r} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                        f"{', '.join(sorted(accepted)) or 'none'}")
    return overrides


def accepted_params(obj: Any, registered: dict[str, Any]) -> set[str] | None:
    """The parameter names :func:`create_method` accepts for the factory ``obj``: its registered params and the
    keyword parameters of its signature (a function's two image arguments excluded); ``None`` (anything) where
    the factory takes ``**kwargs`` and registers no params, or has no signature to read."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    parameters = list(signature.parameters.values())
    if not inspect.isclass(obj):  # a fusion function: its first two positional parameters take the images
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:2]
        parameters = [p for p in parameters if p not in positional]
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {p.name for p in parameters if p.kind in kinds}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    if takes_any and not registered:
        return None
    return named | set(registered)


def list_methods(filter: str | Iterable[str] = "*", exclude_filters: str | Iterable[str] = ()) -> list[str]:
    """Registered method names matching ``filter`` (fnmatch wildcards), natural-sorted."""
    return METHODS.list(filter, exclude_filters)


def method_info(name: str) -> MethodInfo:
    """Metadata of the registered method ``name``."""
    return METHODS.get(name).info
