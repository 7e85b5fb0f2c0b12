"""Cutting a run of rows into bands for networks that are run band by band (CNN, IFCNN, SDNet), and
SwinFusion's runs of tokens and windows into chunks (:func:`even_bands` with ``multiple_of``).

Two size thresholds, for two reasons:

* :data:`BAND_PIXELS` (CNN): above it, CNN's network runs in bands so that no full-size map exists and a
  worker stays under 2 GB at 1024²; the threshold is the runner's own "large image" one
  (:data:`fusionbench.worker_memory.LARGE_PIXELS`: more than any TNO image), defined once, there;
* :data:`WHOLE_PIXELS` (IFCNN): above it (so TNO's 768×576 too), IFCNN runs in small bands for
  speed: whole-image maps of tens of MiB are fresh ``mmap``s page-faulted in at every call, a band's
  are reused from the heap (``docs/fidelity.md``, §IFCNN and §SDNet, session 9).  Up to it (256², the
  Harvard pairs) it runs whole.  SDNet bands every image whose band map exceeds :data:`BAND_BYTES`
  (``whole_pixels=0``; 256² too, in two bands: ``docs/fidelity.md``, SDNet session 11).
"""
from __future__ import annotations

from fusionbench.worker_memory import LARGE_PIXELS

#: images above this many pixels run CNN's network in bands of rows: the runner's large-image threshold
#: (TNO's largest, 768×576 = 442,368 pixels, runs whole)
BAND_PIXELS = LARGE_PIXELS
#: images up to this many pixels (256²) run IFCNN's and SDNet's networks whole; larger ones in bands
WHOLE_PIXELS = 1 << 16
#: bytes of a band's widest float32 map, halo rows included, for IFCNN and SDNet: 8 MiB measured fastest of
#: 4-32 MiB at 768×576 and 1024² (fewest page faults: ``docs/fidelity.md`` §IFCNN, §SDNet)
BAND_BYTES = 8 * 2**20


def small_band_rows(shape: tuple[int, int], channels: int, halo_rows: int, whole_pixels: int = WHOLE_PIXELS) -> int:
    """Output rows per band for an H×W input (IFCNN, SDNet): all of them up to ``whole_pixels`` (default
    :data:`WHOLE_PIXELS`), else as many (at least 16) as keep a band's widest map (``channels`` float32
    channels, plus ``halo_rows`` rows) within :data:`BAND_BYTES`."""
    h, w = shape
    if h * w <= whole_pixels:
        return h
    return min(h, max(16, BAND_BYTES // (channels * 4 * w) - halo_rows))


def fixed_bands(start: int, stop: int, step: int) -> list[tuple[int, int]]:
    """``[start, stop)`` as consecutive ``(r0, r1)`` bands of ``step`` rows, the last one taking the remainder,
    so that every band has at least ``step`` rows whenever the whole span does (one band otherwise)."""
    starts = list(range(start, stop, step))
    if len(starts) > 1 and stop - starts[-1] < step:
        starts.pop()
    return list(zip(starts, starts[1:] + [stop]))


def even_bands(start: int, stop: int, step: int, *, multiple_of: int = 1) -> list[tuple[int, int]]:
    """``[start, stop)`` as the fewest consecutive ``(r0, r1)`` bands of at most ``step`` rows, their sizes
    differing by at most one row (so no band exceeds ``step``, unlike :func:`fixed_bands`' merged remainder);
    no band for an empty span.

    ``multiple_of``: where more than one band is needed, their number is rounded up to a multiple of it (but
    never more bands than rows), so that as many workers get as many bands each (SwinFusion's chunks of
    tokens and windows, ``multiple_of`` = the chunk workers: 17 runs of 64 windows and one of 1 on 2 workers
    left one worker a whole run behind, 6 % of such a block; where a chunk ends changes round-off only).
    """
    rows = stop - start
    if rows <= 0:
        return []
    n = -(-rows // max(1, step))
    if multiple_of > 1 and n > 1:
        n = min(rows, -(-n // multiple_of) * multiple_of)
    edges = [start + rows * k // n for k in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))
