#!/usr/bin/env bash
# Run a list of `fusionbench train` jobs on a device machine (or here, on the CPU), several at once.
#
# Usage (from the repository root):
#   scripts/device_train.sh JOBS_FILE            # one job per line: NAME [fusionbench train options]
#   scripts/device_train.sh - <<'EOF'            # the same list on stdin
#   mopa --seed 0
#   mopa.no_mask --seed 1 --stop-after-steps 2000
#   EOF
#   scripts/device_train.sh --probe mopa [probe options]   # python -m fusionbench.train.probe, after the same set-up
#
# Each job runs `python -m fusionbench.train NAME --device $DEVICE --pack $PACK --out $OUT/runs/LABEL
# --resume-or-start --export $OUT/weights --no-progress [options]`, LABEL being NAME plus `.seedN` when the line
# has `--seed N` (N > 0).  A line with `--seeds 0,1,2` trains those seeds together in one process
# (fusionbench/train/seeds.py) into $OUT/runs/NAME, NAME.seed1, NAME.seed2 (its log: logs/NAME.seeds0-1-2.log).
# Up to $PARALLEL jobs run at the same time (small models leave a GPU mostly
# idle, so several processes share it).  Blank lines and lines starting with # are skipped.
#
# Environment (all optional):
#   OUT          where everything is written (default: ./device_out; the device tool's $OUT when set)
#   DEVICE       cuda (default) or cpu
#   PACK         training pack (default: packs/training.fbpack; `fusionbench train pack NAME ...` writes it)
#   PARALLEL     jobs at the same time (default 4; scripts/device_throughput.sh measures the best)
#   TRAIN_ARGS   options appended to every job line (they win over the line's own), e.g.
#                "--max-minutes 5.5" to fit a command that also ran a throughput probe, or "--precision tf32"
#   PYTHON       python with torch (default: python3)
#   RUNS_FROM    a folder of earlier run folders (LABEL/checkpoint.pt, ...) to continue: copied to
#                $OUT/runs first; every job passes --resume-or-start: a job with a checkpoint continues exactly
#   WHEELS       a folder of wheels installed first (--no-index --no-deps, into TMPDIR/fb_site, put on PYTHONPATH):
#                what the device image lacks (PyWavelets: docs/training.md, "Before the call")
#   FB_INSTALL   auto (default): use an importable fusionbench of this checkout, else
#                `pip install --no-deps --no-build-isolation -e .`, else a PYTHONPATH shim;
#                `shim` forces the shim (no install at all)
#
# Written under $OUT: runs/LABEL/ (checkpoint.pt, log.csv, loss.png, provenance.json, final.pth),
# weights/<stem>.pth + .sha256 + .json (finished jobs), logs/LABEL.log, env.txt, summary.csv (per job),
# throughput.json + throughput.csv (models in parallel, per-model steady steps/s, aggregate steps/s, time left;
# fusionbench/train/throughput.py).  scripts/device_throughput.sh sweeps PARALLEL with this script.
# --probe: runs `python -m fusionbench.train.probe ARGS --device $DEVICE --pack $PACK --out $OUT/probe.json`
# instead of jobs (timing the performance variants of one model in one process; fusionbench/train/probe.py),
# its log in logs/probe.log; exit status the probe's.
# Exit status: 0 when every job exited 0 (finished or stopped for a budget), 1 otherwise.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/device_out}"
DEVICE="${DEVICE:-cuda}"
PACK="${PACK:-packs/training.fbpack}"
PARALLEL="${PARALLEL:-4}"
PYTHON="${PYTHON:-python3}"
FB_INSTALL="${FB_INSTALL:-auto}"
JOBS_FILE="${1:?usage: scripts/device_train.sh JOBS_FILE|-}"
mkdir -p "$OUT/runs" "$OUT/weights" "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"

log() { echo "device_train: $*" >&2; }

# ---------------------------------------------------------------- make fusionbench importable (no network)
fb_importable() {  # fusionbench of THIS checkout importable, with its methods?
  (cd / && "$PYTHON" - "$ROOT" <<'PY'
import sys, pathlib
import fusionbench.methods.mopa as m
root = pathlib.Path(sys.argv[1]).resolve()
sys.exit(0 if root in pathlib.Path(m.__file__).resolve().parents else 1)
PY
  ) >/dev/null 2>&1
}
make_shim() {  # fusionbench/ with methods/ and metrics/ mapped as setup.py's package_dir does
  local base="${TMPDIR:-/tmp}/fb_shim.$$"   # outside $OUT: links do not travel back
  local shim="$base/fusionbench"
  rm -rf "$base" && mkdir -p "$shim"
  for f in "$ROOT"/fusionbench/*; do ln -s "$f" "$shim/$(basename "$f")"; done
  ln -s "$ROOT/methods" "$shim/methods"
  ln -s "$ROOT/metrics" "$shim/metrics"
  export PYTHONPATH="$base${PYTHONPATH:+:$PYTHONPATH}"
}
install_wheels() {  # into a private folder on PYTHONPATH: the image's own environment is left as it is
  local site="${TMPDIR:-/tmp}/fb_site"
  "$PYTHON" -m pip install --no-index --no-deps --no-compile --no-cache-dir --upgrade -q --target "$site" \
    "$WHEELS"/*.whl >>"$OUT/logs/pip.log" 2>&1 || log "wheel install failed (logs/pip.log)"
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
}
if [ -n "${WHEELS:-}" ] && [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  log "installing wheels from $WHEELS"; install_wheels
fi
if [ "$FB_INSTALL" = shim ]; then
  make_shim; log "fusionbench from a PYTHONPATH shim"
elif fb_importable; then
  log "fusionbench of this checkout is importable"
elif (cd / && "$PYTHON" -c 'import importlib.metadata as m; m.version("fusionbench")') >/dev/null 2>&1; then
  # installed from another checkout (a second clone beside a shared venv): never re-point that install here
  make_shim; log "fusionbench is installed from elsewhere; this checkout from a PYTHONPATH shim"
elif "$PYTHON" -m pip install --no-deps --no-build-isolation --no-index -q -e "$ROOT" >"$OUT/logs/pip.log" 2>&1 \
     && fb_importable; then
  log "installed with pip install --no-deps --no-build-isolation -e ."
else
  make_shim; log "pip install failed (see logs/pip.log); fusionbench from a PYTHONPATH shim"
fi

missing="$(cd / && "$PYTHON" -c 'import importlib.util as u
print(" ".join(m for m in ("torch", "numpy", "scipy", "skimage", "PIL", "matplotlib", "tqdm") if u.find_spec(m) is None))')"
[ -n "$missing" ] && log "modules not installed here: $missing (matplotlib and tqdm are optional)"
if ! (cd / && "$PYTHON" -c "import fusionbench.methods, fusionbench.train.cli" >"$OUT/logs/import.log" 2>&1); then
  if [ -n "${WHEELS:-}" ] && [ -d "$WHEELS" ]; then
    log "import failed; installing wheels from $WHEELS"
    install_wheels
  fi
  if ! (cd / && "$PYTHON" -c "import fusionbench.methods, fusionbench.train.cli" >"$OUT/logs/import.log" 2>&1); then
    log "cannot import fusionbench here ($(tail -1 "$OUT/logs/import.log")); missing: ${missing:-?}"
    exit 1
  fi
fi
(cd / && "$PYTHON" - >"$OUT/env.txt" 2>&1) <<'PY'
import platform, torch, fusionbench
print("python", platform.python_version(), "torch", torch.__version__, "fusionbench", fusionbench.__file__)
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
PY
[ -f "$PACK" ] || { log "training pack $PACK not found (write it with: fusionbench train pack NAME ...)"; exit 1; }
PACK="$(cd "$(dirname "$PACK")" && pwd)/$(basename "$PACK")"
if [ -n "${RUNS_FROM:-}" ] && [ -d "$RUNS_FROM" ]; then
  cp -r "$RUNS_FROM"/. "$OUT/runs/" && log "continuing runs copied from $RUNS_FROM"
fi

# ---------------------------------------------------------------- or the variant probe
if [ "$JOBS_FILE" = --probe ]; then
  shift
  log "probe: $* (logs/probe.log)"
  (cd "$OUT" && exec "$PYTHON" -m fusionbench.train.probe "$@" --device "$DEVICE" --pack "$PACK" \
    --out "$OUT/probe.json") >"$OUT/logs/probe.log" 2>&1
  status=$?
  grep '^probe' "$OUT/logs/probe.log" >&2
  exit $status
fi

# ---------------------------------------------------------------- the jobs
if [ "$JOBS_FILE" = - ]; then mapfile -t LINES; else mapfile -t LINES <"$JOBS_FILE"; fi
read -r -a EXTRA <<<"${TRAIN_ARGS:-}"
pids=(); labels=(); job_runs=()
t_jobs=$(date +%s.%N)
for line in "${LINES[@]}"; do
  line="${line%%#*}"; read -r -a words <<<"$line"
  [ "${#words[@]}" -eq 0 ] && continue
  name="${words[0]}"; label="$name"; seeds=""
  for ((k = 1; k < ${#words[@]}; k++)); do
    if [ "${words[$k]}" = --seed ] && [ "${words[$((k + 1))]:-0}" != 0 ]; then label="$name.seed${words[$((k + 1))]}"; fi
    if [ "${words[$k]}" = --seeds ]; then seeds="${words[$((k + 1))]:-}"; fi
  done
  if [ -n "$seeds" ]; then  # several seeds in one process: --out is the parent of their run folders
    label="$name.seeds${seeds//,/-}"; out_arg="$OUT/runs"; runs=""
    for s in ${seeds//,/ }; do if [ "$s" = 0 ]; then runs+=" $name"; else runs+=" $name.seed$s"; fi; done
  else
    out_arg="$OUT/runs/$label"; runs="$label"
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n; done
  log "start $label"
  # run from $OUT, not the checkout: ./fusionbench must not shadow the installed (or shimmed) package
  (cd "$OUT" && exec "$PYTHON" -m fusionbench.train "$name" --device "$DEVICE" --pack "$PACK" --out "$out_arg" --resume-or-start \
    --export "$OUT/weights" --no-progress "${words[@]:1}" ${EXTRA[@]+"${EXTRA[@]}"}) >"$OUT/logs/$label.log" 2>&1 &
  pids+=($!); labels+=("$label"); job_runs+=("$runs")
done
status=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then log "done ${labels[$i]}"; else log "FAILED ${labels[$i]} (logs/${labels[$i]}.log)"; status=1; fi
done
read -r -a run_labels <<<"${job_runs[*]:-}"   # one run folder per seed (a --seeds line trains several)

# ---------------------------------------------------------------- summary and throughput
wall=$(awk -v a="$t_jobs" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [ "${#run_labels[@]}" -gt 0 ]; then
  # stdlib only: runs as a file, whatever made fusionbench importable
  # --since: a resumed run folder keeps its previous call's provenance.json; a job that failed now never replaced it
  "$PYTHON" "$ROOT/fusionbench/train/throughput.py" "$OUT" --parallel "$PARALLEL" --wall-seconds "$wall" \
    --since "$t_jobs" "${run_labels[@]}" 2>"$OUT/logs/throughput.log" || log "throughput summary failed (logs/throughput.log)"
  cat "$OUT/summary.csv" >&2
  log "throughput: $(cat "$OUT/throughput.json" 2>/dev/null | tr -d '\n ' )"
fi
exit $status
