"""Writes ``metrics/functional/_fmi_lanes3.py``: the FMI lanes kernel unrolled for 3×3 windows.

Usage::

    python scripts/gen_fmi_lanes3.py            # (re)write the module; touches _fmi_lanes.py if it changed
    python scripts/gen_fmi_lanes3.py --check    # exit 1 if the committed module is not this script's output
    python scripts/gen_fmi_lanes3.py --stdout   # print the module instead

Every FMI preset runs 3×3 windows through ``_side3_lanes`` and ``_pair3_lanes``: per window the same
floating-point operations, in the same order, as the general kernels ``_fmi_lanes._side_lanes`` and
``_pair_lanes`` (and the one-window ``_fmi_kernel``), with the nine values of a window and their
intermediates as named locals, every loop over a window's values or cells unrolled, and the
staircase's data-dependent loads written as selections (docs/metrics.md, issue 23, fifth round).  That
order of operations is the metric's specification (its values are calibrated against the reference
implementations and pinned bit for bit by ``tests/metrics/test_cpu_independence.py``), so the unrolled
code is written out here once, as loops over the window's values, instead of by hand in ~1,300 lines.

Editing: change this script, run it, and check the FMI tests (``test_fmi_kernel.py`` compares the
kernel with the one-window kernel bit for bit; ``test_fmi_generated.py`` fails until the module is
regenerated).  The emitted statements are the arithmetic: reordering two additions changes FMI's bits.
numba caches a compiled function under its own source file only, and ``_fmi_lanes._row`` (cached under
``_fmi_lanes.py``) has these kernels compiled into it, so a rewrite also touches ``_fmi_lanes.py``
(else processes keep loading the old kernels from numba's disk cache).

The script is specific to w = 3 (l = 9 values, 18 cells): the names, the layouts, the pairwise-sum
shapes and the comments assume it; other window sizes use the general loops of ``_fmi_lanes``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "metrics" / "functional" / "_fmi_lanes3.py"
#: compiles the generated kernels into its cached ``_row``: touched when the target changes
DEPENDENT = REPO / "metrics" / "functional" / "_fmi_lanes.py"

LANES = 128  #: window positions per block: the flat buffers' row stride
W = 3  #: window side
N = W * W  #: values per window
CELLS = 2 * N  #: cells of the coupling's staircase: N row cells (F index i), then N column cells (X index k)

#: rows of ``_side3_lanes``' flat per-side buffer: four blocks of N rows, then five per-window scalars
S3_BLOCKS = ("P", "C", "T", "G")  # pdf, cdf, centred pdf, log2 pdf
S3_SCALARS = ("SD", "SS", "H", "TOT", "CS")
#: rows of ``_pair3_lanes``' flat scratch: UNUSED rows first (the layout LLVM vectorises, see the comment
#: emitted above the constants), four per-window scalars, then the CELLS cell indices and CELLS masses
P3_UNUSED = 18
P3_SCALARS = ("PHI", "K1", "C", "LOGK")

DECORATOR = '@njit(cache=True, nogil=True, error_model="numpy")'


def num(x: int) -> str:
    """An integer as a float literal (``9`` -> ``9.0``): counts and cell indices are held in doubles."""
    return repr(float(x))


def _operand(expr: str) -> str:
    """``expr`` as an operand of ``+``: parenthesised unless a single name or literal."""
    return f"({expr})" if " " in expr else expr


def fold(terms: list[str]) -> str:
    """``terms`` summed left to right: ``((a + b) + c) + d``."""
    out = terms[0]
    for n, term in enumerate(terms[1:]):
        out = f"({out}) + {term}" if n else f"{out} + {term}"
    return out


def pairwise(terms: list[str]) -> tuple[str, str, list[str]]:
    """numpy's pairwise order for 8 ≤ n < 128 terms (as ``_fmi_lanes._pwsum_lanes``): eight accumulators
    (accumulator q sums terms q, q + 8, ... of the whole blocks of eight, left to right), their tree
    ``(lo) + (hi)``, then the remaining ``n % 8`` terms left to right.  Returns (lo, hi, the remaining terms).
    """
    n = len(terms)
    assert 8 <= n < 128, n
    stop = n - n % 8
    acc = [_operand(fold(terms[q:stop:8])) for q in range(8)]
    lo = f"({acc[0]} + {acc[1]}) + ({acc[2]} + {acc[3]})"
    hi = f"({acc[4]} + {acc[5]}) + ({acc[6]} + {acc[7]})"
    return lo, hi, terms[stop:]


class _Out:
    """Lines of source, indented by four spaces per level."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, level: int, text: str = "") -> None:
        self.lines.append("    " * level + text if text else "")

    def block(self, text: str) -> None:
        """Verbatim text (several lines, no indentation added)."""
        self.lines.extend(text.split("\n"))


def _row(buf: str, block: str, k: int) -> str:
    """Element j of row k of block ``block`` of a flat buffer: ``fo[(S3_P + 3) * L + j]``."""
    return f"{buf}[({block} + {k}) * L + j]"


def _scalar(buf: str, row: str) -> str:
    """Element j of a one-row field of a flat buffer: ``fo[S3_SD * L + j]``."""
    return f"{buf}[{row} * L + j]"


HEADER = '''\
# Generated by scripts/gen_fmi_lanes3.py: do not edit by hand.  Edit the generator and run
#     python scripts/gen_fmi_lanes3.py
# (tests/metrics/test_fmi_generated.py checks that this file is the generator's output, byte for byte).
"""FMI's lanes kernel for 3×3 windows (every FMI preset): ``_side3_lanes`` and ``_pair3_lanes``, unrolled.

``_fmi_lanes._row`` calls these for w = 3 in place of the general ``_side_lanes``/``_pair_lanes``:
per window the same floating-point operations in the same order (so the same bits), written out for the
nine values of a window and the 18 cells of its staircase (``_fmi_lanes``'s docstring; docs/metrics.md,
issue 23, fifth round).  The statements and their order are FMI's arithmetic: change them in
``scripts/gen_fmi_lanes3.py``, regenerate, and run ``tests/metrics/test_fmi_kernel.py``.
"""
from __future__ import annotations

import math

from numba import njit

from ._log2 import TINY, log2

LANES = {lanes}  # window positions per block (``_fmi_lanes``' blocks): the row stride of the flat buffers below
'''

SELECT = '''\
@njit(cache=True, nogil=True)
def _select(c, x, y):
    """``x if c else y`` as a call, for ``_pair3_lanes``: the same value, and LLVM inlines it to one select.

    Numba's SSA repair visits every block once per reassigned name, so a body with ~700 conditional
    expressions (each one a branch and a join) took 52 s of a cold compile; written as calls, 8 s.  The
    operands here are plain loads and arithmetic without side effects, so evaluating both is harmless, and
    the kernel's speed and bits are unchanged (measured: 0.15 s for eight 256² FMI row-sum calls either way;
    ``tests/metrics/test_fmi_kernel.py``).  ``_side3_lanes`` keeps its conditionals: there an operand is a
    log2 that the branch skips, and as calls that kernel ran 1.7× slower.
    """
    return x if c else y'''

SIDE3_DOC = '''\
    """``_side_lanes`` for 3×3 windows: every step of a window in one pass over the lanes.

    Same operations in the same order per window as ``_side_lanes`` (and ``_fmi_kernel._side``), so the
    same bits; the nine values and their intermediates stay in registers instead of going through
    twenty (9, LANES) scratch passes.  ``o`` is one flat float64 buffer of S3_ROWS × LANES: with constant
    row offsets LLVM sees that the stores cannot overlap and vectorises the whole body over the lanes
    (separate output arrays would need run-time overlap checks, beyond which it does not vectorise).
    """'''

PAIR3_DOC = '''\
    """``_pair_lanes`` for 3×3 windows: three passes over the lanes instead of ~30.

    ``fo``/``xo``: the fused and source sides (``_side3_lanes``'s layout); ``w3`` (P3_ROWS × LANES) is
    flat scratch.  Pass 1 (vectorised): the correlation, the coupled
    cdf, the staircase (counts, and "the cdf just below" as the last element of the prefix the
    comparisons select, which is the element the count indexes), the masses and φ; pass 2: the
    C library's log2 of 1 − φ (as ``_pair_lanes``); pass 3 (vectorised): the cells' entropy terms.
    Counts and cell indices are small integers held exactly in doubles (int64 → double conversions do
    not vectorise on AVX2), and the pdf values at a cell's index are selected from the nine loaded
    values (a data-dependent load would stop LLVM from vectorising: it cannot bound its address).  Per pair the same
    operations in the same order as ``_pair_lanes``, hence the same bits (``test_fmi_kernel.py``).
    """'''

P3_COMMENT = """\
# Rows of ``_pair3_lanes``'s flat scratch: φ, 1 − φ, the correlation, log2|1 − φ|, the {c} cells' pdf indices
# (row cells: X's; column cells: F's), the {c} staircase masses.  Rows 0–{u} are left unused: with this
# layout LLVM (numba 0.68) vectorises the first pass; with the same rows from 0, or the masses first, it
# reports an "unsafe indirect dependence" between the stores and leaves the pass scalar (2× slower;
# measured with -pass-remarks=loop-vectorize, docs/metrics.md)"""


def _constants(out: _Out) -> None:
    """The rows of ``_side3_lanes``' flat buffer (``S3_*``)."""
    s3 = {name: i * N for i, name in enumerate(S3_BLOCKS)}
    s3.update({name: len(S3_BLOCKS) * N + i for i, name in enumerate(S3_SCALARS)})
    s3_rows = len(S3_BLOCKS) * N + len(S3_SCALARS)
    out(0, f"# Rows of the flat per-side buffer of ``_side3_lanes`` (w = {W}, l = {N}): row r holds lanes r·LANES .. "
           f"r·LANES + {LANES - 1}.")
    out(0, ", ".join(f"S3_{b}" for b in S3_BLOCKS) + " = " + ", ".join(str(s3[b]) for b in S3_BLOCKS)
        + "  # pdf, cdf, centred pdf, log2 pdf: nine rows each")
    out(0, ", ".join(f"S3_{s}" for s in S3_SCALARS) + " = " + ", ".join(str(s3[s]) for s in S3_SCALARS)
        + "  # per-window scalars")
    out(0, f"S3_ROWS = {s3_rows}")
    out(0)
    out(0)


def _p3_constants(out: _Out) -> None:
    """The rows of ``_pair3_lanes``' flat scratch (``P3_*``)."""
    p3 = {name: P3_UNUSED + i for i, name in enumerate(P3_SCALARS)}
    p3["IDX"] = P3_UNUSED + len(P3_SCALARS)
    p3["MASS"] = p3["IDX"] + CELLS
    rows = p3["MASS"] + CELLS
    out.block(P3_COMMENT.format(c=CELLS, u=P3_UNUSED - 1))
    names = [*P3_SCALARS, "IDX", "MASS"]
    out(0, ", ".join(f"P3_{n}" for n in names) + " = " + ", ".join(str(p3[n]) for n in names))
    out(0, f"P3_ROWS = {rows}")
    out(0)
    out(0)


def _side3(out: _Out) -> None:
    """``_side3_lanes``: ``_side_lanes``' steps for one window, in its order."""
    ks = range(N)
    out(0, DECORATOR)
    out(0, "def _side3_lanes(win, nb, o):")
    out.block(SIDE3_DOC)
    out(1, "L = LANES")
    out(1, "for j in range(nb):")
    for k in ks:
        out(2, f"v{k} = win[{k}, j]")
    out(2, "lo = v0")  # min and max, left to right
    out(2, "hi = v0")
    for k in ks[1:]:
        out(2, f"lo = v{k} if v{k} < lo else lo")
        out(2, f"hi = v{k} if v{k} > hi else hi")
    out(2, "flat = hi == lo")
    out(2, "span = hi - lo")
    for k in ks:
        out(2, f"s{k} = 1.0 if flat else (v{k} - lo) / span")
    for col in range(W):  # column sums (column-major values), then their sum left to right
        total = fold([f"s{col * W + i}" for i in range(W)])
        if col == 0:
            out(2, f"tot = {total}  # column sums, then their sum left to right")
        else:
            out(2, f"tot = tot + ({total})")
    for k in ks:
        out(2, f"p{k} = s{k} / tot")
    out(2, "c0 = p0  # the cdf; also the running sum s of _side_lanes (the same additions)")
    for k in ks[1:]:
        out(2, f"c{k} = c{k - 1} + p{k}")
    out(2, f"mean = c{N - 1} / {N}")
    for k in ks:
        out(2, f"t{k} = p{k} - mean")
    out(2, f"m1 = p0  # Σ i p and Σ i² p (i = 1..{N}), left to right; (i·i) is exact")
    out(2, "m2 = p0")
    for k in ks[1:]:
        i = k + 1
        out(2, f"m2 += {num(i * i)} * p{k}")
        out(2, f"m1 += {num(i)} * p{k}")
    out(2, "q = t0 * t0")
    for k in ks[1:]:
        out(2, f"q += t{k} * t{k}")
    for k in ks:
        out(2, f"g{k} = log2(max(p{k}, TINY)) if p{k} > 0 else 0.0")
    for block, var in zip(S3_BLOCKS, "pctg"):
        for k in ks:
            out(2, f"{_row('o', 'S3_' + block, k)} = {var}{k}")
    out(2, f"{_scalar('o', 'S3_SD')} = math.sqrt(m2 - m1 * m1)")
    out(2, f"{_scalar('o', 'S3_SS')} = q")
    out(2, "# numpy's pairwise order for nine terms: eight accumulators, their tree, then the ninth")
    lo, hi, rest = pairwise([f"p{k} * g{k}" for k in ks])
    lead = f"{_scalar('o', 'S3_H')} = -(("
    out(2, f"{lead}({lo})")
    out(2, " " * len(lead) + f"+ ({hi})) + {fold(rest)})")
    for row, var in (("S3_TOT", "p"), ("S3_CS", "c")):
        lo, hi, rest = pairwise([f"{var}{k}" for k in ks])
        out(2, f"{_scalar('o', row)} = {fold([f'(({lo}) + ({hi}))', *rest])}")
    out(0)
    out(0)


def _staircase(out: _Out) -> None:
    """Pass 1 of ``_pair3_lanes`` from the coupled cdf to the masses and cell indices."""
    last = num(N - 1)
    out(2, "# staircase: a_i = #{k: X_k < F_i}, b_k = #{i: F_i <= X_k}; both sets are prefixes (non-decreasing")
    out(2, "# cdfs), so the last selected element is the one at the counted index")
    for k in range(N):
        out(2, f"b{k} = {num(N)}")
        out(2, f"fb{k} = 0.0")
    for i in range(N):  # row cell i: F index i; the comparisons also count b_k
        out(2, "a = 0.0")
        out(2, "xb = 0.0")
        for k in range(N):
            out(2, f"lt = u{k} < f{i}")
            out(2, "a += _select(lt, 1.0, 0.0)")
            out(2, f"b{k} -= _select(lt, 1.0, 0.0)")
            out(2, f"xb = _select(lt, u{k}, xb)")
            out(2, f"fb{k} = _select(lt, fb{k}, f{i})")
        prev = f"f{i - 1}" if i else "0.0"
        out(2, f"m{i} = max(f{i} - max({prev}, xb), 0.0)")
        out(2, f"a = min(a, {last})")
        out(2, f"q{i} = _select(neg, {last} - a, a)")
    for k in range(N):  # column cell N + k: X index k in coupling order
        prev = f"u{k - 1}" if k else "0.0"
        out(2, f"m{N + k} = max(u{k} - max({prev}, fb{k}), 0.0)")
        out(2, f"q{N + k} = min(b{k}, {last})")
        out(2, f"d{k} = _select(neg, {num(N - 1 - k)}, {num(k)})")


def _cell_terms(out: _Out, m: int) -> None:
    """The two entropy terms of cell m (e_m, h_m) from its base and log term."""
    out(2, f"mm = w3[(P3_MASS + {m}) * L + j]")
    out(2, f"e{m} = _select(mm == 0, 0.0, base * tl)")
    out(2, "cell = _select(mm == 0, 0.0, phi * mm + base)")
    out(2, "aa = abs(cell)")
    out(2, f"h{m} = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell")


def _pick(out: _Out, into: tuple[str, str], side: str) -> None:
    """``into`` = side's pdf and log2 pdf at index g (a float count): selected from the N loaded values."""
    p, lg = into
    out(2, f"{p} = {side}p0")
    out(2, f"{lg} = {side}g0")
    for k in range(1, N):
        out(2, f"{p} = _select(g == {k}, {side}p{k}, {p})")
        out(2, f"{lg} = _select(g == {k}, {side}g{k}, {lg})")


def _pair3(out: _Out) -> None:
    """``_pair3_lanes``: ``_pair_lanes``' steps for one (source, fused) pair, in its order."""
    ks = range(N)
    out(0, DECORATOR)
    out(0, "def _pair3_lanes(fo, xo, nb, w3, same, val):")
    out.block(PAIR3_DOC)
    out(1, "L = LANES")
    # pass 1: correlation, coupled cdf, staircase, masses, φ
    out(1, "for j in range(nb):")
    out(2, f"num = {_row('xo', 'S3_T', 0)} * {_row('fo', 'S3_T', 0)}")
    for k in ks[1:]:
        out(2, f"num += {_row('xo', 'S3_T', k)} * {_row('fo', 'S3_T', k)}")
    out(2, "c = _select(num == 0, 0.0, num / math.sqrt(xo[S3_SS * L + j] * fo[S3_SS * L + j]))")
    out(2, "pos = c >= 0")
    out(2, "neg = c < 0")
    out(2, f"r = {_row('xo', 'S3_P', N - 1)}  # lower Fréchet bound: the cdf of X reversed")
    out(2, f"u0 = _select(pos, {_row('xo', 'S3_C', 0)}, r)")
    for k in ks[1:]:
        out(2, f"r = r + {_row('xo', 'S3_P', N - 1 - k)}")
        out(2, f"u{k} = _select(pos, {_row('xo', 'S3_C', k)}, r)")
    for k in ks:
        out(2, f"f{k} = {_row('fo', 'S3_C', k)}")
    _staircase(out)
    n = num(N)
    for i in ks:  # row cells: ci = i, cj = q_i
        out(2, f"t{i} = m{i} * ({num(N - i)} * ({n} - q{i}))")
    for k in ks:  # column cells: ci = q_{N+k}, cj = d_k
        out(2, f"t{N + k} = m{N + k} * (({n} - q{N + k}) * ({n} - d{k}))")
    out(2, "# numpy's pairwise order for 18 terms: eight accumulators (two terms each), their tree, then two")
    lo, hi, rest = pairwise([f"t{m}" for m in range(CELLS)])
    out(2, f"sb_lo = {lo}")
    out(2, f"sb_hi = {hi}")
    out(2, f"sb = {fold(['sb_lo', 'sb_hi', *rest])}")
    out(2, "cov = sb - fo[S3_CS * L + j] * xo[S3_CS * L + j]")
    out(2, "xsd = xo[S3_SD * L + j]")
    out(2, "fsd = fo[S3_SD * L + j]")
    out(2, "ratio = c / (cov / (fsd * xsd))")
    out(2, "degenerate = (xsd == 0) | (fsd == 0) | (pos & (c == 0))")
    out(2, "phi = _select(degenerate, 0.0, ratio)")
    out(2, "w3[P3_PHI * L + j] = phi")
    out(2, "w3[P3_K1 * L + j] = 1 - phi")
    out(2, "w3[P3_C * L + j] = c")
    for m in range(CELLS):
        out(2, f"{_row('w3', 'P3_MASS', m)} = m{m}")
        out(2, f"{_row('w3', 'P3_IDX', m)} = q{m}")
    # pass 2: libm's log2 of 1 − φ
    out(1, "for j in range(nb):  # libm log2, once per pair (as the one-window kernel)")
    out(2, "kk = w3[P3_K1 * L + j]")
    out(2, "w3[P3_LOGK * L + j] = math.log2(abs(_select(kk != 0, kk, 1.0)))")
    # pass 3: the cells' entropy terms
    out(1, "for j in range(nb):")
    out(2, "k1 = w3[P3_K1 * L + j]")
    out(2, "phi = w3[P3_PHI * L + j]")
    out(2, "logk = w3[P3_LOGK * L + j]")
    out(2, "pos = w3[P3_C * L + j] >= 0")
    out(2, "xh = xo[S3_H * L + j]")
    out(2, "fh = fo[S3_H * L + j]")
    out(2, "xtot = xo[S3_TOT * L + j]")
    out(2, "ftot = fo[S3_TOT * L + j]")
    out(2, "hprod = -k1 * (logk * ftot * xtot - fh * xtot - xh * ftot)")
    for side in ("x", "f"):
        buf = f"{side}o"
        for k in ks:
            out(2, f"{side}p{k} = {_row(buf, 'S3_P', k)}")
            out(2, f"{side}g{k} = {_row(buf, 'S3_G', k)}")
    for i in ks:
        out(2, f"g = {_row('w3', 'P3_IDX', i)}")
        out(2, f"# row cell {i} (F index {i}): X's pdf and log2 pdf at the coupled index g (selected: no gather)")
        _pick(out, ("px", "lx"), "x")
        out(2, f"base = k1 * (fp{i} * px)")
        out(2, f"tl = (logk + fg{i}) + lx")
        _cell_terms(out, i)
    for k in ks:
        m = N + k
        out(2, f"g = {_row('w3', 'P3_IDX', m)}")
        out(2, f"# column cell {m} (X index {k} in coupling order): F's pdf and log2 pdf at the counted index g")
        _pick(out, ("pf", "lf"), "f")
        out(2, f"xq = _select(pos, xp{k}, xp{N - 1 - k})")
        out(2, f"xlq = _select(pos, xg{k}, xg{N - 1 - k})")
        out(2, "base = k1 * (pf * xq)")
        out(2, "tl = (logk + lf) + xlq")
        _cell_terms(out, m)
    for var, first in (("e", True), ("h", False)):
        lo, hi, rest = pairwise([f"{var}{m}" for m in range(CELLS)])
        out(2, f"s_lo = {lo}" + ("  # pairwise, as sb" if first else ""))
        out(2, f"s_hi = {hi}")
        total = fold(["s_lo", "s_hi", *rest])
        out(2, f"hj = hprod + ({total})" if first else f"hj = hj - ({total})")
    out(2, "hs = xh + fh")
    out(2, "mi = hs - hj")
    out(2, "v = _select(mi == 0, 0.0, 2 * mi / hs)")
    out(2, "val[j] = _select(same[j], 1.0, v)")


def generate() -> str:
    """The text of ``metrics/functional/_fmi_lanes3.py``."""
    assert W == 3, "the emitted names, layouts, pairwise shapes and comments are those of 3×3 windows"
    out = _Out()
    out.block(HEADER.format(lanes=LANES).rstrip("\n"))
    out(0)
    _constants(out)
    out.block(SELECT)
    out(0)
    out(0)
    _side3(out)
    _p3_constants(out)
    _pair3(out)
    return "\n".join(out.lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the committed module differs")
    mode.add_argument("--stdout", action="store_true", help="print the module instead of writing it")
    args = parser.parse_args(argv)
    text = generate()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else None
    if args.check:
        if current != text:
            print(f"{TARGET.relative_to(REPO)} is not the output of {Path(__file__).name}: regenerate it",
                  file=sys.stderr)
            return 1
        return 0
    if current == text:
        print(f"{TARGET.relative_to(REPO)}: unchanged")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    os.utime(DEPENDENT)  # numba's cached _row has the old kernels compiled in: invalidate it
    print(f"{TARGET.relative_to(REPO)}: written ({len(text.splitlines())} lines); touched "
          f"{DEPENDENT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
