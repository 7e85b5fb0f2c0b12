"""Filter banks of the non-subsampled pyramid, directional filter bank and shearlet transforms.

- ``atrous_filters(name)``: Cunha's 2-D non-subsampled pyramid filters ``(h0, h1, g0, g1)``
  ('9-7', 'maxflat', 'pyr', 'pyrexc').  These filters were designed numerically (A. Cunha,
  2004; Cunha, Zhou & Do, IEEE TIP 15(10), 2006) and are only published as coefficient
  tables, so their coefficients are tabulated below (one quadrant each; every filter has
  horizontal, vertical and diagonal symmetry).  Checked equal to the toolbox's own
  ``atrousfilters`` output in ``tests/methods/test_transforms_nsct.py``.
- ``dfilters(name, kind)``: the diamond filter pairs 'pkva' (Phoong–Kim–Vaidyanathan–Ansari
  ladder filters via the ladder-to-quincunx map), 'vk' (McClellan-transformed
  Vetterli–Kovačević pair) and 'dmaxflat7' (diamond maxflat, Cunha & Do), built from their
  definitions, with ``fan_filters`` / ``parallelogram_filters`` derived as the toolbox does.
- ``shearing_filters_meyer(n, k)``: the Easley–Labate–Lim Meyer shearing filters.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

_QUADRANTS: dict[str, dict[str, list[list[float]]]] = {
    '9-7': {
        'h0': [
            [0.00010448733363597687, 0.000835898669087815, 0.0029256453418073525, 0.005851290683614705, 0.007314113354518382],
            [0.000835898669087815, 0.003080092825681339, 0.001762583572331734, -0.007296122436400075, -0.013629023704276572],
            [0.0029256453418073525, 0.001762583572331734, -0.01306636838062783, -0.02131840020457929, -0.018830187186854155],
            [0.005851290683614705, -0.007296122436400075, -0.02131840020457929, 0.0740121520471188, 0.16436627826336664],
            [0.007314113354518382, -0.013629023704276572, -0.018830187186854155, 0.16436627826336664, 0.3245066567828517],
        ],
        'h1': [
            [0.0007130606493300789, 0.004278363895980473, 0.010695909739951184, 0.014261212986601577],
            [0.004278363895980473, 0.006758492597320315, -0.011471304674542998, -0.027902866751765683],
            [0.010695909739951184, -0.011471304674542998, -0.08460488012923245, -0.12487533142947652],
            [0.014261212986601577, -0.027902866751765683, -0.12487533142947652, 0.8345774966177815],
        ],
        'g0': [
            [-0.0007130606493300789, -0.004278363895980473, -0.010695909739951184, -0.014261212986601577],
            [-0.004278363895980473, -0.010354962986601577, -0.0029145768825820494, 0.006324044416078103],
            [-0.010695909739951184, -0.0029145768825820494, 0.08460488012923245, 0.1536470945437266],
            [-0.014261212986601577, 0.006324044416078103, 0.1536470945437266, 0.2661236742820939],
        ],
        'g1': [
            [0.00010448733363597687, 0.000835898669087815, 0.0029256453418073525, 0.005851290683614705, 0.007314113354518382],
            [0.000835898669087815, 0.0036070965270211808, 0.004924605780370786, 0.0006089330836975557, -0.0030889496774797283],
            [0.0029256453418073525, 0.004924605780370786, -0.006742323964549725, -0.024480422412618347, -0.03147827601901037],
            [0.005851290683614705, 0.0006089330836975557, -0.024480422412618347, -0.06732496269441629, -0.09617379576343019],
            [0.007314113354518382, -0.0030889496774797283, -0.03147827601901037, -0.09617379576343019, 0.849802834447164],
        ],
    },
    'maxflat': {
        'h0': [
            [-7.900496718847182e-07, 0.0, 1.4220894093924927e-05, 2.5281589500310983e-05, -4.9773129328737247e-05, -0.00022753430550279883, -0.00033182086219158167],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.4220894093924927e-05, 0.0, -0.0002559760936906487, -0.00045506861100559767, 0.0008959163279172705, 0.004095617499050379, 0.00597277551944847],
            [2.5281589500310983e-05, 0.0, -0.00045506861100559767, 0.0009765625, 0.0015927401385195919, -0.0087890625, -0.01795090623402861],
            [-4.9773129328737247e-05, 0.0, 0.0008959163279172705, 0.0015927401385195919, -0.0031357071477104465, -0.014334661246676327, -0.020904714318069645],
            [-0.00022753430550279883, 0.0, 0.004095617499050379, -0.0087890625, -0.014334661246676327, 0.0791015625, 0.16155815610625748],
            [-0.00033182086219158167, 0.0, 0.00597277551944847, -0.01795090623402861, -0.020904714318069645, 0.16155815610625748, 0.3177420190660832],
        ],
        'h1': [
            [6.391587676622346e-10, 0.0, -1.7257286726880333e-08, -3.067962084778726e-08, 1.3805829381504267e-07, 5.522331752601707e-07, 3.3747582932565985e-07, -1.9328161134105974e-06, -5.6949046198705095e-06, -7.649452131381623e-06],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [-1.7257286726880333e-08, 0.0, 4.65946741625769e-07, 8.283497628902559e-07, -3.727573933006152e-06, -1.4910295732024608e-05, -9.111847391792816e-06, 5.2186035062086126e-05, 0.00015376242473650378, 0.00020653520754730382],
            [-3.067962084778726e-08, 0.0, 8.283497628902559e-07, -2.9917573832012203e-07, -6.6267981031220475e-06, 5.3851632897621965e-06, 4.049868144081346e-05, -1.884807151416769e-05, -0.00023692226948222173, -0.0003769812640795245],
            [1.3805829381504267e-07, 0.0, -3.727573933006152e-06, -6.6267981031220475e-06, 2.9820591464049215e-05, 0.00011928236585619686, 7.289477913434253e-05, -0.000417488280496689, -0.0012300993978920302, -0.0016522816603784306],
            [5.522331752601707e-07, 0.0, -1.4910295732024608e-05, 5.3851632897621965e-06, 0.00011928236585619686, -9.693293921571956e-05, -0.0007289762659346422, 0.00033926528725501844, 0.004264600850679991, 0.006785662753431441],
            [3.3747582932565985e-07, 0.0, -9.111847391792816e-06, 4.049868144081346e-05, 7.289477913434253e-05, -0.0007289762659346422, -0.001468581806076247, 0.002551416930771248, 0.01181401175635013, 0.017093222023136675],
            [-1.9328161134105974e-06, 0.0, 5.2186035062086126e-05, -1.884807151416769e-05, -0.000417488280496689, 0.00033926528725501844, 0.002551416930771248, -0.0011874285053925643, -0.01492610297737997, -0.023749819637010044],
            [-5.6949046198705095e-06, 0.0, 0.00015376242473650378, -0.00023692226948222173, -0.0012300993978920302, 0.004264600850679991, 0.01181401175635013, -0.01492610297737997, -0.0826466923977296, -0.12203257624594532],
            [-7.649452131381623e-06, 0.0, 0.00020653520754730382, -0.0003769812640795245, -0.0016522816603784306, 0.006785662753431441, 0.017093222023136675, -0.023749819637010044, -0.12203257624594532, 0.821896776039774],
        ],
        'g0': [
            [-6.391587676622346e-10, 0.0, 1.7257286726880333e-08, 3.067962084778726e-08, -1.3805829381504267e-07, -5.522331752601707e-07, -3.3747582932565985e-07, 1.9328161134105974e-06, 5.6949046198705095e-06, 7.649452131381623e-06],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.7257286726880333e-08, 0.0, -4.65946741625769e-07, -8.283497628902559e-07, 3.727573933006152e-06, 1.4910295732024608e-05, 9.111847391792816e-06, -5.2186035062086126e-05, -0.00015376242473650378, -0.00020653520754730382],
            [3.067962084778726e-08, 0.0, -8.283497628902559e-07, -1.2809236054493144e-06, 6.6267981031220475e-06, 2.305662489808766e-05, 1.0064497559808503e-05, -8.06981871433068e-05, -0.00021814634152337594, -0.00028666046030363884],
            [-1.3805829381504267e-07, 0.0, 3.727573933006152e-06, 6.6267981031220475e-06, -2.9820591464049215e-05, -0.00011928236585619686, -7.289477913434253e-05, 0.000417488280496689, 0.0012300993978920302, 0.0016522816603784306],
            [-5.522331752601707e-07, 0.0, 1.4910295732024608e-05, 2.305662489808766e-05, -0.00011928236585619686, -0.00041501924816557786, -0.00018116095607655303, 0.0014525673685795225, 0.0039266341474207675, 0.005159888285465499],
            [-3.3747582932565985e-07, 0.0, 9.111847391792816e-06, 1.0064497559808503e-05, -7.289477913434253e-05, -0.00018116095607655303, 0.001468581806076247, 0.0006340633462679356, -0.01181401175635013, -0.021745034491193898],
            [1.9328161134105974e-06, 0.0, -5.2186035062086126e-05, -8.06981871433068e-05, 0.000417488280496689, 0.0014525673685795225, 0.0006340633462679356, -0.005083985790028328, -0.013743219515972684, -0.018059608999129246],
            [5.6949046198705095e-06, 0.0, -0.00015376242473650378, -0.00021814634152337594, 0.0012300993978920302, 0.0039266341474207675, -0.01181401175635013, -0.013743219515972684, 0.0826466923977296, 0.1638988884584603],
            [7.649452131381623e-06, 0.0, -0.00020653520754730382, -0.00028666046030363884, 0.0016522816603784306, 0.005159888285465499, -0.021745034491193898, -0.018059608999129246, 0.1638988884584603, 0.31358726209239235],
        ],
        'g1': [
            [-7.900496718847182e-07, 0.0, 1.4220894093924927e-05, 2.5281589500310983e-05, -4.9773129328737247e-05, -0.00022753430550279883, -0.00033182086219158167],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.4220894093924927e-05, 0.0, -0.0002559760936906487, -0.00045506861100559767, 0.0008959163279172705, 0.004095617499050379, 0.00597277551944847],
            [2.5281589500310983e-05, 0.0, -0.00045506861100559767, -0.0009765625, 0.0015927401385195919, 0.0087890625, 0.01329909376597139],
            [-4.9773129328737247e-05, 0.0, 0.0008959163279172705, 0.0015927401385195919, -0.0031357071477104465, -0.014334661246676327, -0.020904714318069645],
            [-0.00022753430550279883, 0.0, 0.004095617499050379, 0.0087890625, -0.014334661246676327, -0.0791015625, -0.1196918438937425],
            [-0.00033182086219158167, 0.0, 0.00597277551944847, 0.01329909376597139, -0.020904714318069645, -0.1196918438937425, 0.8177420190660831],
        ],
    },
    'pyrexc': {
        'h0': [
            [-0.003236043456039806, -0.012944173824159223, -0.019416260736238835],
            [-0.012944173824159223, 0.0625, 0.15088834764831843],
            [-0.019416260736238835, 0.15088834764831843, 0.3406092167691145],
        ],
        'h1': [
            [-0.003236043456039806, -0.012944173824159223, -0.019416260736238835],
            [-0.012944173824159223, -0.0625, -0.09911165235168155],
            [-0.019416260736238835, -0.09911165235168155, 0.8406092167691145],
        ],
        'g0': [
            [-0.00016755163599004882, -0.001005309815940293, -0.002513274539850732, -0.003351032719800976],
            [-0.001005309815940293, -0.005246663087920392, -0.01193886400821893, -0.015395021472477663],
            [-0.002513274539850732, -0.01193886400821893, 0.06769410071569153, 0.15423938036811946],
            [-0.003351032719800976, -0.015395021472477663, 0.15423938036811946, 0.3325667382415921],
        ],
        'g1': [
            [0.00016755163599004882, 0.001005309815940293, 0.002513274539850732, 0.003351032719800976],
            [0.001005309815940293, -0.0012254238241592198, -0.013949483640099517, -0.023437500000000007],
            [0.002513274539850732, -0.013949483640099517, -0.06769410071569153, -0.10246268507148255],
            [0.003351032719800976, -0.023437500000000007, -0.10246268507148255, 0.8486516952966369],
        ],
    },
}


def _mirror_quadrant(q: np.ndarray) -> np.ndarray:
    """Full symmetric filter from its upper-left quadrant (centre row/column included)."""
    top = np.concatenate([q, q[:, -2::-1]], axis=1)
    return np.concatenate([top, top[-2::-1, :]], axis=0)


@lru_cache(maxsize=None)
def atrous_filters(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Non-subsampled pyramid filters ``(h0, h1, g0, g1)`` of Cunha's ``atrousfilters(name)``.

    ``h0``/``h1``: analysis low/high-pass; ``g0``/``g1``: synthesis low/high-pass, with
    ``h0 * g0 + h1 * g1 = δ``.  'pyr' is 'pyrexc' with the two high-pass filters exchanged.
    """
    if name == "pyr":
        h0, h1, g0, g1 = atrous_filters("pyrexc")
        return h0, g1, g0, h1
    if name not in _QUADRANTS:
        raise ValueError(f"unknown pyramid filter {name!r}; choose from '9-7', 'maxflat', 'pyr', 'pyrexc'")
    out = tuple(_mirror_quadrant(np.array(_QUADRANTS[name][k], dtype=np.float64)) for k in ("h0", "h1", "g0", "g1"))
    for f in out:
        f.setflags(write=False)
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- helpers (toolbox semantics)

def modulate2(x: np.ndarray, kind: str) -> np.ndarray:
    """Multiply by (-1)^n along rows ('r'), columns ('c') or both ('b'); n = 0 at index floor(size/2)."""
    n1 = (np.arange(x.shape[0]) - x.shape[0] // 2)
    n2 = (np.arange(x.shape[1]) - x.shape[1] // 2)
    m1 = np.where(n1 % 2 == 0, 1.0, -1.0)[:, None]
    m2 = np.where(n2 % 2 == 0, 1.0, -1.0)[None, :]
    if kind == "r":
        return x * m1
    if kind == "c":
        return x * m2
    if kind == "b":
        return x * m1 * m2
    raise ValueError(kind)


def resampz(x: np.ndarray, kind: int, shift: int = 1) -> np.ndarray:
    """Shear a matrix by whole samples (types 1/2: columns shifted vertically; 3/4: rows
    shifted horizontally), then drop all-zero border rows/columns, as the toolbox's ``resampz``."""
    r, c = x.shape
    if kind in (1, 2):
        s = np.arange(c) * (-shift if kind == 1 else shift)
        s = s - s[-1] if s[-1] < 0 else s
        y = np.zeros((r + abs(shift * (c - 1)), c))
        rows = s[None, :] + np.arange(r)[:, None]
        y[rows, np.broadcast_to(np.arange(c), (r, c))] = x
        nz = np.flatnonzero(np.linalg.norm(y, axis=1) != 0)
        return y[nz[0]:nz[-1] + 1, :]
    if kind in (3, 4):
        return resampz(x.T, kind - 2, shift).T
    raise ValueError("resampz type must be 1, 2, 3 or 4")


def qupz(x: np.ndarray) -> np.ndarray:
    """Quincunx upsampling by Q1 = [1 -1; 1 1] (toolbox ``qupz(x, 1)``)."""
    x1 = resampz(x, 4)
    m, n = x1.shape
    x2 = np.zeros((2 * m - 1, n))
    x2[::2, :] = x1
    return resampz(x2, 1)


def ld2quin(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quincunx filter pair from a 1-D all-pass ladder filter (Phoong et al. 1995)."""
    beta = np.asarray(beta, dtype=np.float64).ravel()
    n = beta.size // 2
    h = qupz(np.outer(beta, beta))
    h0 = h.copy()
    h0[2 * n - 1, 2 * n - 1] += 1.0
    h0 /= 2.0
    from scipy.signal import convolve2d

    h1 = -convolve2d(h, h0)
    h1[4 * n - 2, 4 * n - 2] += 1.0
    return h0, h1


def mctrans(b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """McClellan transform of the odd-length zero-phase 1-D filter ``b`` with kernel ``t``
    (Chebyshev recursion; the result is rotated by 180° as MATLAB's ``ftrans2``/toolbox ``mctrans``)."""
    from scipy.signal import convolve2d

    b = np.asarray(b, dtype=np.float64).ravel()
    n = (b.size - 1) // 2
    b = np.fft.ifftshift(b)
    a = np.concatenate([[b[0]], 2.0 * b[1:n + 1]])

    def add_centred(big: np.ndarray, small: np.ndarray) -> np.ndarray:
        out = big.copy()
        r0 = (big.shape[0] - small.shape[0]) // 2
        c0 = (big.shape[1] - small.shape[1]) // 2
        out[r0:r0 + small.shape[0], c0:c0 + small.shape[1]] += small
        return out

    p0 = np.ones((1, 1))
    p1 = t.astype(np.float64)
    h = add_centred(a[1] * p1, a[0] * p0)
    for i in range(2, n + 1):
        p2 = add_centred(2.0 * convolve2d(t, p1), -p0)
        h = add_centred(a[i] * p2, h)
        p0, p1 = p1, p2
    return np.rot90(h, 2).copy()


_PKVA_BETA = np.array([0.6300, -0.1930, 0.0972, -0.0526, 0.0272, -0.0144])
"""Ladder coefficients of the 12-tap PKVA all-pass filter (toolbox ``ldfilter('pkva')``)."""

_DIAMOND_KERNEL = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float64) / 4


@lru_cache(maxsize=None)
def dfilters(name: str, kind: str = "d") -> tuple[np.ndarray, np.ndarray]:
    """Diamond filter pair ``(h0, h1)`` of the toolbox's ``dfilters(name, kind)``; kind 'd' or 'r'."""
    if name == "pkva":
        v = _PKVA_BETA
        h0, h1 = ld2quin(np.concatenate([v[::-1], v]))
        h0, h1 = np.sqrt(2) * h0, np.sqrt(2) * h1
        if kind == "r":
            h0, h1 = modulate2(h1, "b"), modulate2(h0, "b")
    elif name == "vk":
        if kind == "d":
            b0, b1 = np.array([1, 2, 1]) / 4, np.array([-1, -2, 6, -2, -1]) / 4
        else:
            b0, b1 = np.array([-1, 2, 6, 2, -1]) / 4, np.array([-1, 2, -1]) / 4
        h0, h1 = mctrans(b0, _DIAMOND_KERNEL), mctrans(b1, _DIAMOND_KERNEL)
    elif name == "dmaxflat7":
        h0, h1 = _dmaxflat_pair(7, kind)
    else:
        raise ValueError(f"unknown directional filter {name!r}; choose from 'pkva', 'vk', 'dmaxflat7'")
    return h0, h1


@lru_cache(maxsize=None)
def nsdfb_filters(name: str, kind: str = "d") -> tuple[tuple[np.ndarray, np.ndarray], list, list]:
    """Filters of the non-subsampled DFB as ``nsctdec`` builds them:
    ``(k1, k2)`` fan filters and the two lists of 4 parallelogram filters ``f1``, ``f2``."""
    h1, h2 = dfilters(name, kind)
    h1, h2 = h1 / np.sqrt(2), h2 / np.sqrt(2)
    fan = (modulate2(h1, "c"), modulate2(h2, "c"))
    return fan, parallelogram_filters(h1), parallelogram_filters(h2)


def parallelogram_filters(f: np.ndarray) -> list[np.ndarray]:
    """The 4 parallelogram filters of the toolbox's ``parafilters`` for one diamond filter."""
    y = [modulate2(f, "r"), modulate2(f, "c")]
    y += [y[0].T, y[1].T]
    return [resampz(yi, i + 1) for i, yi in enumerate(y)]


# --------------------------------------------------------------------------- shearlets

def _meyer_wind(x: float) -> float:
    if -1 / 3 + 1 / 2 < x < 1 / 3 + 1 / 2:
        return 1.0
    if (1 / 3 + 1 / 2 <= x <= 2 / 3 + 1 / 2) or (-2 / 3 + 1 / 2 <= x <= 1 / 3 + 1 / 2):
        w = 3 * abs(x - 1 / 2) - 1
        z = w ** 4 * (35 - 84 * w + 70 * w ** 2 - 20 * w ** 3)
        return float(np.cos(np.pi / 2 * z) ** 2)
    return 0.0


def _windowing(n: int, nbands: int) -> np.ndarray:
    """Meyer windows splitting a length-n all-ones signal into ``nbands`` (toolbox ``windowing``)."""
    t = n / nbands
    g = [_meyer_wind((-t / 2 + j) / t) for j in range(int(np.floor(2 * t)))]
    y = np.zeros((n, nbands))
    ks = np.arange(-t / 2, 1.5 * t - 1 + 1e-12, 1.0)
    for j in range(nbands):  # later taps overwrite earlier ones, as in the toolbox loop
        for idx, k in enumerate(ks):
            y[int(np.floor(np.mod(k + j * t, n))), j] = g[idx]
    return y


def _mround(x: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: half away from zero."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _pseudo_polar_coordinates(n: int) -> tuple[np.ndarray, ...]:
    """Index maps of the pseudo-polar grid (toolbox ``gen_x_y_cordinates``), 0-based."""
    m = n + 1
    x1 = np.zeros((m, m))
    y1 = np.zeros((m, m))
    x2 = np.zeros((m, m))
    y2 = np.zeros((m, m))
    for i in range(1, m + 1):
        x0, xn, yn = i, m - i + 1, m
        if xn == x0:
            x1[i - 1] = (m - 1) / 2 + 1
            y1[i - 1] = np.arange(1, m + 1)
            x2[i - 1] = np.arange(1, m + 1)
            y2[i - 1] = (m - 1) / 2 + 1
        else:
            slope = (yn - 1) / (xn - x0)
            xt = np.linspace(x0, xn, m)
            yy = _mround(slope * (xt - x0) + 1)
            xx = _mround(xt)
            x1[i - 1], y1[i - 1], x2[i - 1], y2[i - 1] = xx, yy, yy, xx
    x1n = np.flipud(x1[:n, :n])
    y1n = y1[:n, :n]
    x2n = x2[1:, :n]
    y2n = y2[1:, :n].copy()
    y2n[n - 1, 0] = n
    idx = [a.astype(int) - 1 for a in (x1n, y1n, x2n, y2n)]
    d = np.zeros((n, n))
    np.add.at(d, (idx[1], idx[0]), 1)
    np.add.at(d, (idx[3], idx[2]), 1)
    return (*idx, d)


@lru_cache(maxsize=None)
def shearing_filters_meyer(n: int, k: int) -> np.ndarray:
    """Spatial shearing filters, shape ``(2**k, n, n)`` (toolbox ``shearing_filters_Myer(n, k)``)."""
    x1, y1, x2, y2, d = _pseudo_polar_coordinates(n)
    wf = _windowing(2 * n, 2 ** k)
    out = np.empty((2 ** k, n, n))
    for j in range(2 ** k):
        c = np.zeros((n, n))
        np.add.at(c, (y1, x1), np.broadcast_to(wf[:n, j][:, None], (n, n)))
        np.add.at(c, (y2, x2), np.broadcast_to(wf[n:, j][:, None], (n, n)))
        c = c / d
        out[j] = np.real(np.fft.fftshift(np.fft.ifft2(np.fft.fftshift(c)))) / np.sqrt(n)
    out.setflags(write=False)
    return out


# Diamond maxflat half-band kernel of order 7 (Cunha & Do, "On two-channel filter banks with
# directional vanishing moments", IEEE TIP 16(5), 2007): one quadrant of integer coefficients
# over 2**24, the centre (index [7, 7] of the full 15×15 kernel) set to ``d`` (0 here).
_DMAXFLAT7_QUADRANT = np.array([
    [0, 231, 0, 126, 0, 105, 0, 100],
    [231, 0, -3675, 0, -2009, 0, -1715, 0],
    [0, -3675, 0, 27930, 0, 15435, 0, 13804],
    [126, 0, 27930, 0, -136514, 0, -77910, 0],
    [0, -2009, 0, -136514, 0, 495145, 0, 311780],
    [105, 0, 15435, 0, 495145, 0, -1535709, 0],
    [0, -1715, 0, -77910, 0, -1535709, 0, 6305740],
    [100, 0, 13804, 0, 311780, 0, 6305740, 0],
], dtype=np.float64) / 2 ** 24


def _dmaxflat_pair(order: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """'dmaxflat<order>' diamond pair: three-stage ladder prototypes McClellan-mapped with the
    diamond maxflat kernel (toolbox ``dfilters('dmaxflat7')``)."""
    if order != 7:
        raise ValueError("only dmaxflat7 is implemented")
    kernel = _mirror_quadrant(_DMAXFLAT7_QUADRANT)
    m1 = m2 = 1 / np.sqrt(2)
    k1 = k3 = 1 - np.sqrt(2)
    k2 = m1
    h = np.array([0.25 * k2 * k3, 0.5 * k2, 1 + 0.5 * k2 * k3]) * m1
    h = np.concatenate([h, h[-2::-1]])
    g = np.array([-0.125 * k1 * k2 * k3, 0.25 * k1 * k2,
                  -0.5 * k1 - 0.5 * k3 - 0.375 * k1 * k2 * k3, 1 + 0.5 * k1 * k2]) * m2
    g = np.concatenate([g, g[-2::-1]])
    h0 = mctrans(h, kernel)
    g0 = mctrans(g, kernel)
    h0 = np.sqrt(2) * h0 / h0.sum()
    g0 = np.sqrt(2) * g0 / g0.sum()
    if kind == "r":
        return g0, modulate2(h0, "b")
    return h0, modulate2(g0, "b")
