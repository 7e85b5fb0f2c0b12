#!/usr/bin/env bash
# Measure training throughput against the number of models trained at once (choose PARALLEL on the device).
#
# Usage (from the repository root):
#   scripts/device_throughput.sh JOBS_FILE [LEVELS] [STEPS]
#     LEVELS  PARALLEL values to try, e.g. "1 3 9 27" (the default)
#     STEPS   optimiser steps per model in each probe (default 60; the first 10 are warm-up, not timed)
#
# For each level K, the first K jobs of JOBS_FILE (all of them if it has fewer), each with
# --stop-after-steps STEPS, run through scripts/device_train.sh with PARALLEL=K into $OUT/probe/pK (a
# stopped run exports no weights; its checkpoint is deleted, so nothing heavy travels back).  Then:
#   $OUT/throughput_sweep.csv   one row per level: models in parallel, per-model steady steps/s (median, min),
#                               aggregate steps/s (all models' steps / the probe's wall time, start-up included)
#   $OUT/best_parallel.txt      the level with the highest steady aggregate (sum of the per-model steady rates)
# Environment: as scripts/device_train.sh (OUT, DEVICE, PACK, PYTHON, FB_INSTALL).
# Example (one device call: probe, then train with the best level):
#   scripts/device_throughput.sh scripts/device_jobs/issue19_table4.txt "1 9 27" 40 &&
#     PARALLEL=$(cat "$OUT/best_parallel.txt") scripts/device_train.sh scripts/device_jobs/issue19_table4.txt
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS_FILE="${1:?usage: scripts/device_throughput.sh JOBS_FILE [LEVELS] [STEPS]}"
LEVELS="${2:-1 3 9 27}"
STEPS="${3:-60}"
OUT="${OUT:-$ROOT/device_out}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT/probe"
OUT="$(cd "$OUT" && pwd)"
mapfile -t JOBS < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$JOBS_FILE")
[ "${#JOBS[@]}" -gt 0 ] || { echo "device_throughput: no job in $JOBS_FILE" >&2; exit 1; }
probes=()
for k in $LEVELS; do
  n=$(( k < ${#JOBS[@]} ? k : ${#JOBS[@]} ))
  echo "device_throughput: probe PARALLEL=$k ($n models x $STEPS steps)" >&2
  for ((i = 0; i < n; i++)); do printf '%s --stop-after-steps %s\n' "${JOBS[$i]}" "$STEPS"; done >"$OUT/probe/jobs_p$k.txt"
  OUT="$OUT/probe/p$k" PARALLEL="$k" "$ROOT/scripts/device_train.sh" "$OUT/probe/jobs_p$k.txt" 2>"$OUT/probe/p$k.log" \
    || echo "device_throughput: probe PARALLEL=$k had failures ($OUT/probe/p$k.log)" >&2
  rm -f "$OUT/probe/p$k"/runs/*/checkpoint.pt "$OUT/probe/p$k"/runs/*/final.pth  # throwaway: keep logs, not weights
  probes+=("$OUT/probe/p$k")
done
best=$("$PYTHON" "$ROOT/fusionbench/train/throughput.py" "$OUT" --sweep "${probes[@]}") || exit 1
cat "$OUT/throughput_sweep.csv" >&2
echo "device_throughput: best PARALLEL=$best (highest steady aggregate steps/s; $OUT/best_parallel.txt)" >&2
