"""``fusionbench.fuse``: one pair through exactly the runner's path.

Load (or take arrays) → lumas → method → put the colour side's chroma back →
quantise (the colour protocol, :mod:`fusionbench.colour`).  The
result is the uint8 image the runner saves, and :func:`scoring_view` gives the
uint8 grey images the metrics see.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import colour
from .io import ImageError, check_pair, load_image
from .method_registry import FusionMethod, create_method


class MethodOutputError(RuntimeError):
    """A method returned something unusable (NaN/inf, wrong shape or dtype)."""


def _label(x: str | Path | np.ndarray, role: str) -> str:
    """How an error names an input: its path when it was given as one, else its role (``a``, ``b``, ``fused``)."""
    return str(x) if isinstance(x, (str, Path)) else role


def _as_image(x: str | Path | np.ndarray, label: str) -> np.ndarray:
    """A file or an array as the image a method receives: a copy of the caller's array (a method that writes into
    its inputs changed a caller's float32 images, session 39's API audit), an RGB array with three equal channels
    as grey (as :func:`~fusionbench.io.load_image` reads such a file; until session 39 only a uint8 one), and one
    :class:`~fusionbench.io.ImageError` naming ``label`` for anything else."""
    if isinstance(x, (str, Path)):
        return load_image(x)
    arr = np.array(x)  # a copy, never the caller's array
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ImageError(label, f"array dtype {arr.dtype} not supported (uint8, or float in [0, 1])")
        if not np.isfinite(arr).all():
            raise ImageError(label, f"float array holds {np.count_nonzero(~np.isfinite(arr))} NaN or infinite values")
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ImageError(label, "float arrays must lie in [0, 1]")
    if arr.ndim == 3 and arr.shape[2] == 3:
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = np.ascontiguousarray(arr[..., 0])
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ImageError(label, f"expected an H×W or H×W×3 image, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(label, f"empty image (shape {arr.shape})")
    return arr


#: Float outputs outside this range are refused as on another scale (0..255, -1..1); inside it they are clipped to
#: [0, 1] (ports saturate like MATLAB's ``uint8``): a luma method's output before it takes the chroma of a colour
#: source, then the image when quantised.  Measured on the 35 available built-in methods
#: (raw output before quantising; 4 built-in, 2 Harvard and 2 TNO pairs, task-restricted methods on their task's
#: pairs): 21 return uint8, the 14 float ones stay within [0, 1] exactly (min 0.0, max 1.0: they clip themselves).
#: The bound leaves a wide margin for a plugin that overshoots a little (ringing, an unclipped sharpening).
FLOAT_OUTPUT_RANGE = (-0.5, 1.5)

_CONTRACT = "return H×W (or H×W×3) float in [0, 1] or uint8"


def _output_array(fused: Any, name: str) -> np.ndarray:
    """``fused`` as a numeric array, or :class:`MethodOutputError` saying what the method returned instead."""
    if fused is None or isinstance(fused, (str, bytes)):
        what = "None" if fused is None else f"a {type(fused).__name__}"
        raise MethodOutputError(f"method {name} returned {what}; {_CONTRACT}")
    try:
        out = np.asarray(fused)
    except (TypeError, ValueError, RuntimeError) as exc:  # a ragged list, a tensor on a GPU or needing grad, ...
        raise MethodOutputError(f"method {name} returned a {type(fused).__name__} that is not an array ({exc}); "
                                f"{_CONTRACT}") from None
    kind = out.dtype.kind
    if kind not in "biufc":  # object, str, bytes, void, datetime
        raise MethodOutputError(f"method {name} returned values of dtype {out.dtype}; {_CONTRACT}")
    if kind == "b":
        raise MethodOutputError(f"method {name} returned a bool array; {_CONTRACT} (e.g. mask.astype(np.float32))")
    if kind == "c":
        raise MethodOutputError(f"method {name} returned complex values ({out.dtype}); take the real part or the "
                                f"magnitude and {_CONTRACT}")
    return out


def _check_range(out: np.ndarray, name: str) -> None:
    """Refuse NaN/inf, integers other than uint8, and floats clearly on another scale than [0, 1]."""
    if out.dtype == np.uint8 or out.size == 0:
        return
    if out.dtype.kind in "iu":
        lo, hi = int(out.min()), int(out.max())
        raise MethodOutputError(f"method {name} returned {out.dtype} values in [{lo}, {hi}]; {_CONTRACT} (e.g. "
                                "np.clip(out, 0, 255).astype(np.uint8) for 0..255 grey levels, out / 65535 for 16-bit)")
    if not np.all(np.isfinite(out)):
        raise MethodOutputError(f"method {name} returned NaN or inf values")
    lo, hi = float(out.min()), float(out.max())
    if lo < FLOAT_OUTPUT_RANGE[0] or hi > FLOAT_OUTPUT_RANGE[1]:
        hint = " (e.g. out / 255 for 0..255 grey levels)" if hi > FLOAT_OUTPUT_RANGE[1] else ""
        raise MethodOutputError(f"method {name} returned {out.dtype} values in [{lo:.4g}, {hi:.4g}], not in [0, 1] "
                                f"(only values within {list(FLOAT_OUTPUT_RANGE)} are clipped); {_CONTRACT}{hint}")


def _check_output(fused: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """The method's output as uint8 or float, checked against the contract (``docs/plugins.md``): the expected
    ``shape`` (singleton axes squeezed), uint8 or float within :data:`FLOAT_OUTPUT_RANGE`, no NaN/inf; anything
    else is one :class:`MethodOutputError` line naming the method and what it returned."""
    out = _output_array(fused, name)
    if out.shape != shape:
        squeezed = np.squeeze(out)
        if squeezed.shape != shape:
            raise MethodOutputError(f"method {name} returned shape {out.shape}, expected {shape}")
        out = squeezed
    _check_range(out, name)
    return out


def fuse_arrays(method: FusionMethod, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fuse two loaded uint8 (or [0,1] float) images with a created method; returns uint8.

    Colour protocol (``docs/conventions.md``): a ``luma`` method fuses the
    BT.601 luma of ``a`` with the luma of ``b`` (grey images as they are); the
    result takes the chroma of ``b`` if ``b`` is colour, else of ``a`` if ``a``
    is colour (:func:`fusionbench.colour.recolour`), else it is grey.  An
    ``own`` method receives both images as loaded (float32 in [0, 1], H×W or
    H×W×3, on either side) and returns H×W, or H×W×3 when a source is colour.
    """
    check_pair(a, b)
    a_f = colour.to_float(a)
    b_f = colour.to_float(b)
    if method.info.colour == "own":
        out = _output_array(method(a_f, b_f), method.name)
        any_colour = colour.is_colour(a) or colour.is_colour(b)
        expected = (*a.shape[:2], 3) if any_colour and out.ndim == 3 and out.shape[2] == 3 else a.shape[:2]
        return colour.quantise(_check_output(out, tuple(expected), method.name))
    fused_luma = _check_output(method(colour.luma(a_f), colour.luma(b_f)), a.shape[:2], method.name)
    if fused_luma.dtype == np.uint8:
        fused_luma = colour.to_float(fused_luma)
    else:  # saturated first, as the output contract says, then given the chroma (session 37's audit: a luma of
        # 1.45 was recoloured as is, its excess added to every channel, up to 109 grey levels from a luma of 1.0)
        fused_luma = np.clip(fused_luma, 0.0, 1.0)
    return colour.quantise(colour.recolour(fused_luma, a_f, b_f))


def _named(error: Exception, name: str) -> Exception:
    """``error`` with the method ``name`` first in its message, of its own type where that type is built from one
    message (a :class:`~fusionbench.weights.ChecksumError` stays one, for callers that catch it), else a
    :class:`RuntimeError`."""
    try:
        return type(error)(f"{name}: {error}")
    except Exception:  # a type that takes other arguments
        return RuntimeError(f"{name}: {error}")


def fuse(method: str | FusionMethod, a: str | Path | np.ndarray, b: str | Path | np.ndarray, **overrides: Any) -> np.ndarray:
    """Fuse one pair exactly as the runner does and return the saved uint8 image.

    ``a`` is the anatomical (MRI) or visible (grey or colour) image, ``b`` the
    PET/SPECT (colour), CT or infrared image; both may be file paths or arrays
    (uint8, or float in [0, 1]), of any size from 2×2 up (the two the same; a 1×N image is an
    :class:`~fusionbench.io.ImageError`, as the runner refuses it: U2Fusion's reflect padding failed on one
    with a torch error).  Returns H×W uint8 when both are grey, else H×W×3 with the colour side's chroma.
    """
    from .io import check_min_side

    # overrides apply to a method object too (session 39's API audit: they were dropped, typos included)
    # (a method object without overrides is used as it is: its built instance, weights loaded, is kept)
    m = (create_method(method, **overrides) if isinstance(method, str)
         else method.with_params(**overrides) if overrides else method)
    error = m.unavailable_error()
    if error is not None:
        raise _named(error, m.name) from None
    a_img, b_img = _as_image(a, "a"), _as_image(b, "b")
    check_pair(a_img, b_img, _label(a, "a"), _label(b, "b"))  # named by their paths when given as files
    check_min_side(_label(a, "a"), a_img.shape[1], a_img.shape[0])
    return fuse_arrays(m, a_img, b_img)


@dataclass(frozen=True)
class ScoringView:
    """The uint8 grey images every metric sees for one pair."""

    fused: np.ndarray
    a: np.ndarray
    b: np.ndarray


def scoring_view(fused: np.ndarray | str | Path, a: np.ndarray | str | Path, b: np.ndarray | str | Path) -> ScoringView:
    """Fused luma and source greys as uint8 (BT.601 luma of colour, round and clip).

    Each image (an array, or a path loaded as :func:`fuse` loads it) is checked as :func:`fuse` checks its
    inputs: uint8, or float in [0, 1] with no NaN/inf, H×W or H×W×3; and the three must share their size.
    Anything else is an :class:`fusionbench.io.ImageError` naming the image (before, a 0..255 float or an
    int64 image became all 255 here without a word)."""
    f, a_, b_ = _checked_triple(fused, a, b)
    return ScoringView(colour.luma_uint8(f), colour.luma_uint8(a_), colour.luma_uint8(b_))


def _checked_triple(fused: np.ndarray | str | Path, a: np.ndarray | str | Path, b: np.ndarray | str | Path
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three images as :func:`_as_image` reads them, checked to be one size (:func:`scoring_view`, :func:`score`)."""
    f, a_, b_ = _as_image(fused, "fused"), _as_image(a, "a"), _as_image(b, "b")
    check_pair(a_, b_, _label(a, "a"), _label(b, "b"))
    check_pair(a_, f, _label(a, "a"), _label(fused, "fused"))
    return f, a_, b_


def score(fused: np.ndarray | str | Path, a: np.ndarray | str | Path, b: np.ndarray | str | Path,
          metrics: str | Iterable[str] = "paper") -> dict[str, float]:
    """Score one fused image against its sources as ``fusionbench run`` and ``fusionbench score`` do:
    ``{preset: value}`` in the order of :func:`fusionbench.resolve_metrics` (``metrics``: ``"paper"``,
    ``"standard"``, ``"all"``, preset names or patterns).

    The images (arrays, or paths loaded as :func:`fuse` loads them) are checked as :func:`scoring_view` checks
    them; every preset scores the uint8 BT.601 luma of ``fused`` against the sources' lumas, except those that
    read colour (``ChromaErr``), which get the images themselves (:func:`fusionbench.scoring.score_pair`, the
    runner's code).  An undefined value is NaN, as in a run.  A preset that fails raises its error, with a note
    naming it.  ``fusionbench.metrics.evaluate`` on a :func:`scoring_view` gives the same values for the luma
    presets, but NaN for ``ChromaErr``, which it sees without colour (session 38's metrics audit).
    """
    from .metric_registry import resolve_metrics
    from .scoring import score_pair

    names = resolve_metrics(metrics)
    f, a_, b_ = (colour.quantise(x) for x in _checked_triple(fused, a, b))
    scores = score_pair(f, a_, b_, names)
    for name, exc in scores.errors.items():
        exc.add_note(f"raised by metric {name} (fusionbench.score)")
        raise exc
    return {name: scores.values[name] for name in names}
