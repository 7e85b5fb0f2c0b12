#!/usr/bin/env bash
# One prepared device call for the training issues, in order of priority (docs/training.md,
# "The device session script"):
#
#   1. probe   PROBE_STEPS steps of `mopa` in fp32, then in tf32 (throwaway runs): the steps/s the
#              paper-network issue asks to be measured first, in both precisions;
#   2. mopa    issue 21: the registered `mopa`, alone on the device (nothing slows it), on the paper
#              schedule, resumed from RUNS_FROM/mopa when given.  Precision: fp32 when the fp32 probe
#              says the steps left finish before DEADLINE_S (with 15 % to spare), else the faster of
#              the two; a resumed run keeps its checkpoint's precision;
#   3. others  with the time left (at least MIN_REST_S): issue 20's SwinFusion pair and issue 19's
#              other Table 4 presets (seed 0) side by side, in the precision chosen for `mopa`, each
#              stopping with a checkpoint before DEADLINE_S (resumed from RUNS_FROM when given).
#
# Usage (repository root; the device tool's $OUT is where results go):
#   OUT=$OUT WHEELS=.whl scripts/device_session.sh
# Environment (all optional):
#   DEADLINE_S    seconds after the start by which every job has stopped (default 540; the command's
#                 timeout should leave about a minute beyond it for packing the results)
#   PACK_MOPA     pack holding the nine Table 4 presets (default packs/table4.fbpack)
#   PACK_SWIN     pack holding swinfusion and swinfusion.ct (default packs/swinfusion.fbpack)
#   RUNS_FROM     folder of run folders of an earlier session (mopa/, swinfusion/, mopa.no_mask/, ...: the
#                 runs/ folders of its tarballs merged) to continue; each job takes only its own
#   PROBE_STEPS   steps of each probe (default 200)
#   MIN_REST_S    skip step 3 when less time than this is left (default 90)
#   EXTRA         options added to every training job (e.g. "--stop-after-steps 20" for the CPU smoke test)
#   DEVICE, PYTHON, WHEELS, FB_INSTALL: as scripts/device_train.sh
#
# The device tool brings back at most 8 files of 16 MiB from $OUT, two folders deep, so the results
# are packed at the end (also when a step fails) into $OUT/session.txt (what happened, for the reader)
# and tarballs of at most 15 MiB each: $OUT/mopa.tgz (run folder + exported weights + probes + logs),
# $OUT/others.tgz[.partNN] (the step-3 runs).  Unpack with: cat others.tgz* | tar xz
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T0=$(date +%s)
OUT="${OUT:-$ROOT/device_out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="${TMPDIR:-/tmp}/fb_session"          # run folders live here (deep paths do not travel back)
rm -rf "$WORK" && mkdir -p "$WORK"
export DEVICE="${DEVICE:-cuda}" PYTHON="${PYTHON:-python3}"
DEADLINE_S="${DEADLINE_S:-540}"
PACK_MOPA="${PACK_MOPA:-packs/table4.fbpack}"
PACK_SWIN="${PACK_SWIN:-packs/swinfusion.fbpack}"
PROBE_STEPS="${PROBE_STEPS:-200}"
MIN_REST_S="${MIN_REST_S:-90}"
EXTRA="${EXTRA:-}"
STARTUP_S=25                                 # a job's start-up (imports, pack, CUDA) before its clock starts

say() { echo "device_session [$(($(date +%s) - T0)) s]: $*" | tee -a "$OUT/session.txt" >&2; }
left() { echo $((DEADLINE_S - ($(date +%s) - T0))); }
minutes() { awk -v s="$1" 'BEGIN { m = s / 60; if (m < 0.1) m = 0.1; printf "%.2f", m }'; }

pack_results() {  # tarballs of <= 15 MiB each, one folder deep
  local name="$1"; shift
  [ "$#" -gt 0 ] || return 0
  tar czf "$OUT/$name.tgz" -C "$WORK" "$@" 2>>"$OUT/session.txt"
  if [ "$(stat -c %s "$OUT/$name.tgz")" -gt $((15 * 1024 * 1024)) ]; then
    split -b 15m -d "$OUT/$name.tgz" "$OUT/$name.tgz.part" && rm -f "$OUT/$name.tgz"
  fi
}
finish() {
  local status=$?
  say "packing results (exit status $status)"
  local main=() rest=()
  for d in probe mopa; do [ -d "$WORK/$d" ] && main+=("$d"); done
  for d in issue20 issue19; do [ -d "$WORK/$d" ] && rest+=("$d"); done
  pack_results mopa "${main[@]+"${main[@]}"}"
  pack_results others "${rest[@]+"${rest[@]}"}"
  ls -l "$OUT" >&2
}
trap finish EXIT

train() {  # OUT-dir PACK PARALLEL TRAIN_ARGS JOB-LINES...: scripts/device_train.sh on the given lines
  local out="$1" pack="$2" parallel="$3" args="$4"; shift 4
  local line label
  mkdir -p "$out/runs"
  for line in "$@"; do   # continue these jobs' runs only (RUNS_FROM/LABEL, LABEL as device_train.sh makes it)
    label="${line%% *}"
    [[ "$line" =~ --seed\ ([1-9][0-9]*) ]] && label="$label.seed${BASH_REMATCH[1]}"
    if [ -n "${RUNS_FROM:-}" ] && [ -f "$RUNS_FROM/$label/checkpoint.pt" ]; then
      cp -r "$RUNS_FROM/$label" "$out/runs/" && say "continuing $label from $RUNS_FROM/$label"
    fi
  done
  printf '%s\n' "$@" | OUT="$out" PACK="$pack" PARALLEL="$parallel" TRAIN_ARGS="$args $EXTRA" RUNS_FROM= \
    "$ROOT/scripts/device_train.sh" - 2>>"$out.log"
}
rate() {  # steady steps/s of a probe's mopa run (0 when it failed)
  "$PYTHON" - "$1" <<'PY'
import json, sys
try:
    print(json.load(open(sys.argv[1] + "/runs/mopa/provenance.json"))["call"]["steady_steps_per_s"])
except Exception:
    print(0)
PY
}

say "start: DEVICE=$DEVICE DEADLINE_S=$DEADLINE_S PACK_MOPA=$PACK_MOPA PACK_SWIN=$PACK_SWIN RUNS_FROM=${RUNS_FROM:-none}"
for p in "$PACK_MOPA" "$PACK_SWIN"; do [ -f "$p" ] || say "missing pack $p"; done

# ---------------------------------------------------------------- 1. probes (fp32, tf32)
declare -A RATE
for prec in fp32 tf32; do
  mkdir -p "$WORK/probe"
  # RUNS_FROM is not passed: a probe always starts from scratch
  printf 'mopa\n' | OUT="$WORK/probe/$prec" PACK="$PACK_MOPA" PARALLEL=1 RUNS_FROM= \
    TRAIN_ARGS="$EXTRA --stop-after-steps $PROBE_STEPS --precision $prec --checkpoint-minutes 100" \
    "$ROOT/scripts/device_train.sh" - 2>>"$WORK/probe/$prec.log"
  rm -f "$WORK/probe/$prec"/runs/*/checkpoint.pt "$WORK/probe/$prec"/runs/*/final.pth
  RATE[$prec]=$(rate "$WORK/probe/$prec")
  say "probe $prec: ${RATE[$prec]} steady steps/s over $PROBE_STEPS steps"
done

# ---------------------------------------------------------------- 2. mopa (issue 21), alone
SCHEDULE_STEPS=33090
done_steps=0
prec=""
if [ -n "${RUNS_FROM:-}" ] && [ -f "$RUNS_FROM/mopa/checkpoint.pt" ]; then
  read -r done_steps prec < <("$PYTHON" - "$RUNS_FROM/mopa" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1] + "/config.json"))["config"]
prov = sys.argv[1] + "/provenance.json"
try:
    steps = json.load(open(prov))["steps_done"]
except Exception:
    steps = 0
print(steps, cfg.get("precision", "fp32"))
PY
)
  say "continuing mopa from $RUNS_FROM/mopa: $done_steps steps done, precision $prec (kept)"
fi
if [ -z "$prec" ]; then
  budget=$(( $(left) - STARTUP_S ))
  prec=$(awk -v f="${RATE[fp32]}" -v t="${RATE[tf32]}" -v n=$((SCHEDULE_STEPS - done_steps)) -v b="$budget" \
    'BEGIN { if (f > 0 && n / f * 1.15 <= b) print "fp32"; else if (t > f) print "tf32"; else print "fp32" }')
  say "precision $prec: $((SCHEDULE_STEPS - done_steps)) steps left, ${budget} s to go; fp32 needs" \
      "$(awk -v r="${RATE[fp32]}" -v n=$((SCHEDULE_STEPS - done_steps)) 'BEGIN { printf "%.0f", (r > 0) ? n / r : 1e9 }') s," \
      "tf32 $(awk -v r="${RATE[tf32]}" -v n=$((SCHEDULE_STEPS - done_steps)) 'BEGIN { printf "%.0f", (r > 0) ? n / r : 1e9 }') s"
fi
m=$(minutes $(( $(left) - STARTUP_S )))
say "mopa: --precision $prec --max-minutes $m"
train "$WORK/mopa" "$PACK_MOPA" 1 "--precision $prec --max-minutes $m --checkpoint-minutes 1" "mopa --seed 0"
say "mopa: $(cat "$WORK/mopa/summary.csv" 2>/dev/null | tail -1)"

# ---------------------------------------------------------------- 3. the others, side by side
rest=$(left)
if [ "$rest" -lt "$MIN_REST_S" ]; then
  say "no step 3: $rest s left (< $MIN_REST_S)"
  exit 0
fi
m=$(minutes $((rest - STARTUP_S - 10)))
say "others: --precision $prec --max-minutes $m (SwinFusion pair + 8 Table 4 presets, seed 0)"
t4=()
for preset in mask_only attention_only contrast_only decouple_only no_mask no_attention no_contrast no_decouple; do
  t4+=("mopa.$preset --seed 0")
done
train "$WORK/issue20" "$PACK_SWIN" 2 "--precision $prec --max-minutes $m --checkpoint-minutes 1" \
  "swinfusion" "swinfusion.ct" &
train "$WORK/issue19" "$PACK_MOPA" 8 "--precision $prec --max-minutes $m --checkpoint-minutes 1" "${t4[@]}" &
wait
for d in issue20 issue19; do
  say "$d: $(tail -n +2 "$WORK/$d/summary.csv" 2>/dev/null | tr '\n' ';')"
done
