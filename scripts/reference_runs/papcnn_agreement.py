"""Agreement of ``nsst_papcnn`` with the official code's Octave runs (``run_papcnn.m``).

    python papcnn_agreement.py IN_DIR OUT_DIR [NAME ...]

For each case with an Octave result ``OUT_DIR/<name>.png``: fuses ``IN_DIR/<name>_{mri,other}.png`` with
``fusionbench``'s ``nsst_papcnn`` and prints the share of identical values and the largest difference,
then the totals (the figures of ``docs/fidelity.md``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from fusionbench.colour import to_float
from fusionbench.io import load_image
from fusionbench.method_registry import create_method


def main(inputs: Path, outputs: Path, names: list[str]) -> None:
    method = create_method("nsst_papcnn")
    names = names or sorted(p.stem for p in outputs.glob("*.png"))
    same = total = exact_pairs = 0
    worst = 0
    for name in names:
        reference = load_image(outputs / f"{name}.png").astype(int)
        mri = to_float(load_image(inputs / f"{name}_mri.png"))
        other = to_float(load_image(inputs / f"{name}_other.png"))
        ours = np.asarray(method(mri, other)).astype(int)
        if ours.shape != reference.shape:
            print(f"{name}: shape {ours.shape} vs {reference.shape}")
            continue
        diff = np.abs(ours - reference)
        same += int((diff == 0).sum())
        total += diff.size
        exact_pairs += int(diff.max() == 0)
        worst = max(worst, int(diff.max()))
        print(f"{name}: {100 * (diff == 0).mean():.4f} % identical, max {diff.max()}")
    print(f"total: {len(names)} cases, {exact_pairs} identical on every value, "
          f"{100 * same / max(total, 1):.4f} % of {total} values identical, max {worst}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
