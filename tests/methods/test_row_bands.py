"""methods/_row_bands.py: ``even_bands`` (bands of CNN/IFCNN/SDNet/mopa, SwinFusion's chunks) and ``fixed_bands``."""
from __future__ import annotations

import pytest

from fusionbench.methods._row_bands import even_bands, fixed_bands


def _chunks(total: int, size: int, workers: int) -> list[tuple[int, int]]:
    """The former ``_swin_blocks.even_cuts`` restated: the fewest near-equal runs of at most ``size`` covering
    ``range(total)``; when more than one run is needed, the fewest whose number is a multiple of ``workers``
    (or ``total`` runs of one), found by trying each count."""
    if total == 0:
        return []
    k = next(k for k in range(1, total + 1) if -(-total // k) <= size)
    if workers > 1 and k > 1:
        k = next((m for m in range(k, total + 1) if m % workers == 0), total)
    return [(total * i // k, total * (i + 1) // k) for i in range(k)]


def _check_cover(bands: list[tuple[int, int]], start: int, stop: int, step: int) -> None:
    assert bands[0][0] == start and bands[-1][1] == stop
    assert all(r0 == prev[1] for prev, (r0, _) in zip(bands, bands[1:]))
    sizes = [r1 - r0 for r0, r1 in bands]
    assert min(sizes) >= 1 and max(sizes) <= step and max(sizes) - min(sizes) <= 1


def test_multiple_of_reproduces_swinfusions_chunks() -> None:
    cases = 0
    for total in range(0, 140):
        for size in range(1, 40):
            for workers in range(1, 6):
                assert even_bands(0, total, size, multiple_of=workers) == _chunks(total, size, workers), \
                    (total, size, workers)
                cases += 1
    # the chunk sizes SwinFusion uses (CHUNK_ROWS, CHUNK_WINDOWS) on token and window counts up to 1024²
    for total in (1, 63, 64, 65, 1089, 4096, 4097, 16384, 65536, 65537, 1 << 20):
        for size in (64, 4096):
            for workers in (1, 2, 3, 4, 16):
                assert even_bands(0, total, size, multiple_of=workers) == _chunks(total, size, workers)
    assert cases > 27_000


def test_multiple_of_rounds_the_band_count_up() -> None:
    # 1089 windows (33²) in chunks of at most 64: 18 chunks, already a multiple of 2 workers; 20 for 4 workers
    assert len(even_bands(0, 1089, 64)) == len(even_bands(0, 1089, 64, multiple_of=2)) == 18
    assert len(even_bands(0, 1089, 64, multiple_of=4)) == 20
    assert even_bands(0, 5, 2, multiple_of=4) == [(0, 1), (1, 2), (2, 3), (3, 5)]  # 4 bands although 3 suffice
    assert even_bands(0, 3, 1, multiple_of=2) == [(0, 1), (1, 2), (2, 3)]  # never more bands than rows
    assert even_bands(0, 10, 64, multiple_of=4) == [(0, 10)]  # one band needs no rounding


@pytest.mark.parametrize("start", [0, 3, 100])
def test_even_bands_cover_the_span_with_near_equal_bands(start: int) -> None:
    for rows in range(1, 80):
        for step in range(1, 30):
            for multiple_of in (1, 2, 3):
                bands = even_bands(start, start + rows, step, multiple_of=multiple_of)
                _check_cover(bands, start, start + rows, step)
                if multiple_of == 1:
                    assert len(bands) == -(-rows // step)  # the fewest
    assert even_bands(start, start, 8) == [] and even_bands(start, start, 8, multiple_of=2) == []


def test_fixed_bands_merge_the_remainder() -> None:
    assert fixed_bands(0, 10, 4) == [(0, 4), (4, 10)]
    assert fixed_bands(2, 5, 4) == [(2, 5)]
