"""Cutting a run of rows into bands for networks that are run band by band at large sizes (CNN, IFCNN)."""
from __future__ import annotations

#: images above this many pixels run CNN's and IFCNN's networks in bands of rows (TNO's largest,
#: 768×576 = 442,368 pixels, runs whole)
BAND_PIXELS = 1 << 19


def fixed_bands(start: int, stop: int, step: int) -> list[tuple[int, int]]:
    """``[start, stop)`` as consecutive ``(r0, r1)`` bands of ``step`` rows, the last one taking the remainder,
    so that every band has at least ``step`` rows whenever the whole span does (one band otherwise)."""
    starts = list(range(start, stop, step))
    if len(starts) > 1 and stop - starts[-1] < step:
        starts.pop()
    return list(zip(starts, starts[1:] + [stop]))


def even_bands(start: int, stop: int, step: int) -> list[tuple[int, int]]:
    """``[start, stop)`` as the fewest consecutive ``(r0, r1)`` bands of at most ``step`` rows, their sizes
    differing by at most one row (so no band exceeds ``step``, unlike :func:`fixed_bands`' merged remainder)."""
    n = max(1, -(-(stop - start) // max(1, step)))
    edges = [start + (stop - start) * k // n for k in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))
