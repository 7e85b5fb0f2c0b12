"""SDNet's whole official colour pipeline on colour (PET/SPECT) + MRI pairs: MATLAB scripts under
GNU Octave around the official ``test.py`` under TF 2.15.

    python run_sdnet_colour.py SDNET/Medical WEIGHTS_DIR OUT_DIR COLOUR.png:MRI.png[@y0,x0,h,w] ...

1. ``input_process.m`` (Octave, ``run_sdnet_colour_scripts.m``): the 8-bit Y of each colour image;
2. ``test.py`` (``run_sdnet_tf.py``): that Y as ``Test_Function``, the MRI as ``Test_Structure``;
3. ``output_process.m`` (Octave): the fused Y with the colour image's Cb/Cr, as uint8 RGB.

Writes ``OUT_DIR/cases.csv`` and ``OUT_DIR/scripts/Medical\\Result\\RGB\\<n>.png`` (one file each,
the scripts' Windows-style names), with the intermediate Y files beside them.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _cases import crop_text, parse_case, write_case, write_manifest  # noqa: E402


def scripts_name(*parts: str) -> str:
    """The scripts' relative name ``Medical\\<a>\\<b>\\<n>.png``: one file name on Linux."""
    return "\\".join(("Medical",) + parts)


def octave(medical: Path, work: Path, count: int, phase: str) -> None:
    subprocess.run(["octave-cli", "--no-gui", str(HERE / "run_sdnet_colour_scripts.m"), str(medical),
                    str(work), str(count), phase], check=True)


def main(argv: list[str]) -> None:
    medical, weights, out = Path(argv[0]).resolve(), Path(argv[1]).resolve(), Path(argv[2]).resolve()
    work = out / "scripts"
    work.mkdir(parents=True, exist_ok=True)
    rows, tf_cases = [], []
    for n, spec in enumerate(argv[3:], start=1):
        colour_image, mri, crop = parse_case(spec)
        write_case(colour_image, work / scripts_name("Function", "RGB", f"{n}.png"), crop)
        write_case(mri, work / "mri" / f"{n}.png", crop)
        tf_cases.append(f"{work / scripts_name('Function', 'Y', f'{n}.png')}:{work / 'mri' / f'{n}.png'}")
        rows.append({"n": str(n), "colour": str(colour_image), "mri": str(mri), "crop": crop_text(crop)})
    write_manifest(out / "cases.csv", rows)
    count = len(rows)
    octave(medical, work, count, "input")
    subprocess.run([sys.executable, str(HERE / "run_sdnet_tf.py"), str(medical), str(weights), str(out / "tf"),
                    *tf_cases], check=True)
    for n in range(1, count + 1):
        shutil.copy(out / "tf" / "work" / "result" / "epoch29" / f"{n}.png",
                    work / scripts_name("Result", "Y", f"{n}.png"))
    octave(medical, work, count, "output")


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(sys.argv[1:])
