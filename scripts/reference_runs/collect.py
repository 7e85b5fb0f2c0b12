"""Merge the reference runs' output lines into ``tests/metrics/nonsquare_reference.json``'s records.

Usage: python scripts/reference_runs/collect.py OUT1.csv [OUT2.csv ...]
Each line is ``reference,label,triple,value`` (as the run_* scripts print); a value starting with
``ERROR`` is kept as the record's error, a NaN or inf as ``nonfinite`` (the shared file's schema).
The file's ``triples`` and ``provenance`` are left as they are.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "tests" / "metrics" / "nonsquare_reference.json"


def main(paths: list[str]) -> None:
    data = json.loads(PATH.read_text())
    ids = {t["id"] for t in data["triples"]}
    records = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            reference, label, triple, value = line.split(",", 3)
            if triple not in ids:
                raise SystemExit(f"{path}: unknown triple {triple!r}")
            error = value if value.startswith("ERROR") else None
            number = None if error else float(value)
            finite = number is not None and math.isfinite(number)
            records.append({"reference": reference, "metric": label, "triple": triple,
                            "value": number if finite else None, "error": error,
                            "nonfinite": None if finite or error else str(number)})
    records.sort(key=lambda r: (r["reference"], r["triple"], r["metric"]))
    data["records"] = records
    PATH.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(records)} records -> {PATH}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(sys.argv[1:])
