"""Agreement of a registered method with an official code's results on the reference-run cases.

    FUSIONBENCH_HOME=... python case_agreement.py METHOD IN_DIR OUT_DIR [NAME ...]

OUT_DIR holds the official code's uint8 results ``<name>.png`` (``run_papcnn.m``, ``run_vifb_cnn.m``);
IN_DIR the inputs of each case, as ``liu_mst_inputs.py`` writes them (``<name>.mat``: ``I1`` the
functional/CT/IR image, ``I2`` the MRI/visible image, grey, 0-255) or as ``case_inputs.py`` does
(``<name>_other.png``, ``<name>_mri.png``, as loaded).  Fuses each case with METHOD (MRI/visible first,
as the registry calls it; a float result becomes MATLAB's ``uint8(F·255)``) and prints the share of
identical values and the largest difference, then the totals (the figures of ``docs/fidelity.md``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from fusionbench.colour import to_float
from fusionbench.io import load_image
from fusionbench.method_registry import create_method
from fusionbench.methods._matlab import to_uint8


def case_inputs(in_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(MRI/visible, other) of one case, floats in [0, 1] (colour kept where the case has it)."""
    mat = in_dir / f"{name}.mat"
    if mat.is_file():
        images = loadmat(mat)
        return images["I2"] / 255.0, images["I1"] / 255.0
    return to_float(load_image(in_dir / f"{name}_mri.png")), to_float(load_image(in_dir / f"{name}_other.png"))


def main(method_name: str, inputs: Path, outputs: Path, names: list[str]) -> None:
    method = create_method(method_name)
    names = names or sorted(p.stem for p in outputs.glob("*.png"))
    same = total = exact_cases = 0
    worst = 0
    for name in names:
        reference = load_image(outputs / f"{name}.png").astype(int)
        fused = np.asarray(method(*case_inputs(inputs, name)))
        ours = (fused if fused.dtype == np.uint8 else to_uint8(fused * 255.0)).astype(int)
        if ours.shape != reference.shape:
            print(f"{name}: shape {ours.shape} vs {reference.shape}")
            continue
        diff = np.abs(ours - reference)
        same += int((diff == 0).sum())
        total += diff.size
        exact_cases += int(diff.max() == 0)
        worst = max(worst, int(diff.max()))
        print(f"{name}: {100 * (diff == 0).mean():.4f} % identical, max {diff.max()}")
    print(f"total: {len(names)} cases, {exact_cases} identical on every value, "
          f"{100 * same / max(total, 1):.4f} % of {total} values identical, max {worst}")


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
