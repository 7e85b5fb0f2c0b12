"""Metric presets: registration, creation, listing and groups.

A metric *preset* is a public name (``EN``, ``SSIM``, ``SSIM.vifb``) bound to an
implementation with frozen options and metadata (pyiqa's ``DEFAULT_CONFIGS``).
The implementations and the preset table live in ``fusionbench.metrics``; this
core module only holds the registry so that the runner and the reports need
nothing else.

A registered metric object is a callable ``fn(fused, a, b) -> float`` taking
uint8 H×W arrays (the fused luma and the two grey sources).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .registry import Registry

GROUPS = ("paper", "standard", "all")


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of a metric preset."""

    name: str
    needs_sources: bool = True
    higher_is_better: bool = True
    #: ``False`` for a preset whose best value is neither its largest nor its smallest (``Q_SF.liu``, best at 0):
    #: reports give it no best/second marks and no rank tests, and print no direction arrow
    rankable: bool = True
    score_range: tuple[float, float] = (float("-inf"), float("inf"))
    #: what the metric is given: ``"y601"``, uint8 grey / BT.601 luma (every preset but one); ``"rgb"``, the fused
    #: image and the sources as they are, grey or H×W×3 (``ChromaErr``; the runner and ``fusionbench score``
    #: pass those instead of the luma view, :func:`fusionbench.worker.score`)
    colour: str = "y601"
    convention: str = ""  # one line for table footnotes
    groups: tuple[str, ...] = ("all",)
    profile: str = "default"  # default, vifb, mefb, tang, cddfuse
    options: dict[str, Any] = field(default_factory=dict)
    #: Bumped whenever the values the preset gives change (a fix, a new convention): the results store
    #: records it with every score, a run re-scores rows of an older version (from the cached fused
    #: image, without fusing again) and readers leave such rows out (:mod:`fusionbench.store`).
    version: str = "1"

    @property
    def arrow(self) -> str:
        """``↑`` (higher is better), ``↓`` (lower is better) or ``·`` (not rankable) for headers and listings."""
        return "·" if not self.rankable else ("↑" if self.higher_is_better else "↓")


#: the metric presets; a metric registered in a method plugin's module is found too (the methods' plugins load
#: with this registry's: until session 37 it existed for `run`, which loads both, and not for `score`,
#: `list metrics` or `evaluate`)
METRICS: Registry[MetricInfo] = Registry(
    "metric", "fusionbench.metrics", "fusionbench.metrics", lowercase_names=False, also_loads=("fusionbench.methods",)
)
# Names the literature uses for a preset of another name, or for two different metrics (metrics_conventions.md).
METRICS.hints.update({
    "Qw": "MEFB's 'Qw' is Piella's edge-dependent index: preset Q_E (Q_E.mefb reproduces MEFB); Piella's "
          "weighted index Q_W is the preset Q_W.",
    "VIF": "'VIF' names two metrics: VIFp_sum (Sheikh-Bovik pixel VIF, summed over both sources: Tang's and "
           "CDDFuse's 'VIF') and VIFF (Han et al. 2013: MEFB's 'VIF').",
    "FMI": "FMI comes in feature variants: FMI_pixel, FMI_w (wavelet), FMI_dct, FMI_edge.",
    # the groups in another case (``--metrics Paper`` got no hint, ``Standard`` SF.tang; session 38's audit)
    **{group: f"{group!r} (lower case) is a group of presets, for --metrics, resolve_metrics({group!r}) and "
              f"`fusionbench list metrics {group}`."
       for group in ("paper", "standard", "all")},
    "MI.nats": "MI in nats: MI.vifb (after VIFB's min-max stretch) or MI.cddfuse (sklearn); MI and MI.tang are in "
               "bits.",
    "MI.bits": "MI in bits: MI (exact joint histogram) or MI.tang (levels 254/255 merged, Tang's code).",
})


def register_metric(name: str, fn: Callable[..., float] | None = None, info: MetricInfo | None = None, *,
                    override: bool = False, **meta: Any) -> Any:
    """Register the callable ``fn(fused, a, b) -> float`` as preset ``name``.

    ``info`` is the preset's :class:`MetricInfo`, or it is built from ``meta`` (its fields).
    Without ``fn`` this is a decorator, the same pattern as ``register_method``::

        @register_metric("MEAN", needs_sources=False, score_range=(0.0, 255.0))
        def mean_level(fused, a=None, b=None, **kw):
            return float(fused.mean())

    A name already registered raises ``ValueError`` naming both sources (``override=True``
    replaces on purpose), except the same function defined again where it was first (a notebook cell
    run again: same module and ``__qualname__``), which replaces it.  Returns ``fn`` (the decorator
    returns the decorated object).
    """
    # groups named: in meta, or an info whose groups are not MetricInfo's default (an override's info=MetricInfo(...)
    # with the default groups keeps the replaced preset's, as one given by fields does; session 39's second review)
    groups_given = "groups" in meta or (info is not None and tuple(info.groups) != MetricInfo(name=name).groups)
    if info is None:
        if isinstance(meta.get("groups"), str):
            raise TypeError(f"groups takes several names, e.g. groups=({meta['groups']!r},), not a string")
        if "groups" in meta:
            meta["groups"] = tuple(meta["groups"])
        info = MetricInfo(name=name, **meta)
    elif meta:
        raise TypeError("register_metric: pass either info= or MetricInfo fields, not both")

    def decorator(obj: Callable[..., float]) -> Callable[..., float]:
        if isinstance(obj, type):  # it would be called as fn(fused, a, b) (session 39's API audit)
            raise TypeError(f"metric {name!r}: register a function, or an instance of {obj.__name__} (a callable "
                            f"object), not the class")
        if info.name != name:
            raise ValueError(f"metric {name!r}: its MetricInfo is named {info.name!r}")
        METRICS.add(name, obj, _checked_metric(name, info, override, obj, groups_given), override=override)
        return obj

    return decorator if fn is None else decorator(fn)


#: the groups only fusionbench's own presets join: the founding paper's seven metrics, and the standard set (a
#: plugin metric that joined ``paper`` changed the default metrics of every run)
FIXED_GROUPS = ("paper", "standard")
#: the groups each built-in preset registered with: the fixed groups an override of it may keep
_BUILTIN_GROUPS: dict[str, tuple[str, ...]] = {}


def _checked_metric(name: str, info: MetricInfo, override: bool, obj: Any, groups_given: bool) -> MetricInfo:
    """The metadata to register ``obj`` with: ``info``, an ``override=True`` without its own ``groups`` keeping the
    groups of the preset it replaces (session 39's API audit: an override of EN fell out of ``paper``, every run's
    default metrics, without a word); ``ValueError`` for metadata that would be silently ignored or would change
    what others get (session 37's audit): a ``colour`` other than ``"y601"``/``"rgb"`` (``"RGB"`` meant the luma),
    a group that does not exist (the metric in no group), ``paper``/``standard`` from outside fusionbench (but for
    an override of a preset in them), and a new name that differs from a registered one only in case (``ssim``
    beside ``SSIM``: ``--metrics ssim`` then picked it silently)."""
    from dataclasses import replace

    from .registry import BUILTIN, _registering_module

    # the source as the registration will get it, with what must come first loaded (the built-ins, for a user or
    # plugin registration; nothing more for a built-in one, which must not start the plugin scan)
    source = METRICS._before_adding(_registering_module(obj))
    replaced = METRICS._entries.get(name) if override else None
    if replaced is not None and not groups_given:
        info = replace(info, groups=tuple(replaced.info.groups))
    if source == BUILTIN:
        _BUILTIN_GROUPS[name] = tuple(info.groups)
    # an override of a built-in preset may stay in (or name) the fixed groups that preset is in, and no other
    allowed = _BUILTIN_GROUPS.get(name, ()) if replaced is not None else ()
    if info.colour not in ("y601", "rgb"):
        raise ValueError(f"metric {name!r}: colour must be 'y601' (uint8 grey / BT.601 luma) or 'rgb' (the images "
                         f"as they are), not {info.colour!r}")
    unknown = [g for g in info.groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"metric {name!r}: no metric group {', '.join(map(repr, unknown))} (groups: "
                         f"{', '.join(GROUPS)})")
    fixed = [g for g in info.groups if g in FIXED_GROUPS and g not in allowed]
    if fixed and source != BUILTIN:
        raise ValueError(f"metric {name!r}: only fusionbench's presets join the {' and '.join(fixed)} group(s) "
                         "(the founding paper's metrics and the standard set); use groups=('all',) and name it "
                         "with --metrics")
    if not override and source != BUILTIN and name not in METRICS._entries:
        twins = [m for m in METRICS._entries if m.lower() == name.lower()]
        if twins:
            raise ValueError(f"metric {name!r} differs from the registered {twins[0]!r} only in case; choose another "
                             "name (or pass override=True)")
    return info


def list_metrics(filter: str | Iterable[str] = "*", exclude_filters: str | Iterable[str] = ()) -> list[str]:
    """Registered metric presets matching ``filter`` (fnmatch, ignoring case; comma-separated patterns too),
    natural-sorted; where ``filter`` names a group (``paper``, ``standard``, ``all``), alone or in a list, the
    presets in the order given, each group's in its own order, as ``fusionbench list metrics paper`` and
    ``--metrics`` take it (until session 39 a group matched nothing)."""
    from .registry import _patterns

    parts = _patterns(filter)
    if not any(part in GROUPS for part in parts):
        return METRICS.list(parts, exclude_filters)
    excluded = set(METRICS.list(exclude_filters)) if exclude_filters else set()
    names: list[str] = []
    for part in parts:  # in the order given, a group in its own order (a group inside a list was dropped)
        names += [m for m in (resolve_metrics(part) if part in GROUPS else METRICS.list(part)) if m not in names]
    return [m for m in names if m not in excluded]


def metric_info(name: str) -> MetricInfo:
    """Metadata of the registered preset ``name``."""
    return METRICS.get(name).info


def metric_versions(names: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` of the registered presets among ``names`` (an unregistered name, e.g. a plugin's
    no longer installed, is left out: its stored scores are read as they are)."""
    entries = {name: METRICS.find(name) for name in names}
    return {name: entry.info.version for name, entry in entries.items() if entry is not None}


def create_metric(name: str) -> Callable[..., float]:
    """The callable of preset ``name`` (``KeyError`` with suggestions if unknown)."""
    return METRICS.get(name).obj


def reads_colour(name: str) -> bool:
    """Whether preset ``name`` is given the images in colour (``MetricInfo.colour == "rgb"``), not their luma."""
    return METRICS.get(name).info.colour == "rgb"


def resolve_metrics(spec: str | Iterable[str]) -> list[str]:
    """Expand a group name (``paper``, ``standard``, ``all``), a comma list or wildcards into preset names."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        if not item:
            continue
        if item in GROUPS:
            names = [e.name for e in METRICS.entries() if item in e.info.groups]
            if item == "paper":
                order = {n: i for i, n in enumerate(PAPER_ORDER)}
                names.sort(key=lambda n: order.get(n, len(order)))
        elif any(ch in item for ch in "*?["):
            names = list_metrics(item)
            if not names:  # before session 38 such a pattern was dropped without a word (``paper,MS-SSIM*``)
                raise METRICS.with_plugin_failures(
                    KeyError(f"no metric matches {item!r} (see `fusionbench list metrics`)"))
        else:
            METRICS.get(item)  # raises KeyError with suggestions
            names = [item]
        out += [n for n in names if n not in out]
    return out


# The seven metrics of the founding paper, in its column order (Tables 1-3).
PAPER_ORDER = ("AG", "EN", "SF", "SD", "CC", "MI", "SCD")
