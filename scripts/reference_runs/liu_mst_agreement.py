"""fusionbench's ports against ``run_liu_mst.m``'s results: share of identical uint8 values per method.

    FUSIONBENCH_HOME=... python liu_mst_agreement.py IN_DIR OUT_DIR NAME1,NAME2,...

IN_DIR holds the inputs of ``liu_mst_inputs.py``, OUT_DIR the toolbox's results.  For each of
``dwt.vifb``, ``laplacian_pyramid.liu``, ``contrast_pyramid.liu`` and ``nsct.liu``: pairs compared, pairs identical on every
pixel, share of identical values and the largest difference of ``uint8(F)`` against ours.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from fusionbench import create_method
from fusionbench.methods._matlab import to_uint8

RESULTS = {"F_dwt": "dwt.vifb", "F_lp": "laplacian_pyramid.liu", "F_rp": "contrast_pyramid.liu", "F_nsct": "nsct.liu"}


def main(in_dir: Path, out_dir: Path, names: list[str]) -> None:
    tally = {method: [0, 0, 0, 0, 0] for method in RESULTS.values()}  # pairs, exact pairs, same, values, max
    for name in names:
        inputs, results = loadmat(in_dir / f"{name}.mat"), loadmat(out_dir / f"{name}.mat")
        for key, method in RESULTS.items():
            if results[key].size == 0:
                continue
            ours = create_method(method)(inputs["I2"] / 255.0, inputs["I1"] / 255.0)
            diff = np.abs(ours.astype(np.int16) - to_uint8(results[key]).astype(np.int16))
            t = tally[method]
            t[0] += 1
            t[1] += int(diff.max() == 0)
            t[2] += int((diff == 0).sum())
            t[3] += diff.size
            t[4] = max(t[4], int(diff.max()))
    for method, (pairs, exact, same, values, worst) in tally.items():
        share = 100.0 * same / values if values else float("nan")
        print(f"{method}: {pairs} pairs, {exact} identical, {share:.4f} % of values identical, max {worst}")


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(","))
