#!/usr/bin/env bash
# One prepared device call for the training issues, in order of priority (docs/training.md,
# "The next device session: one prepared call"):
#
#   1. probe   the performance variants of a `mopa` step (plain, channels-last, cuDNN benchmark, CUDA
#              graph, combinations), PROBE_STEPS steps each, in ONE process (python -m
#              fusionbench.train.probe: python and CUDA start once), within PROBE_S seconds, on throwaway
#              state; it names the fastest variant that worked (its loss agreeing with plain's);
#   2. mopa    issue 21: the registered `mopa`, alone on the device (nothing slows it), on the paper
#              schedule, resumed from RUNS_FROM/mopa (default device_runs/mopa, committed), with the
#              probe's fastest flags.  Precision: a resumed run keeps its checkpoint's (tf32 for the
#              committed run); a fresh one uses PRECISION (default tf32);
#   3. others  with the time left (at least MIN_REST_S): issue 20's SwinFusion pair (plain flags: the
#              probe timed mopa's network) and issue 19's other Table 4 presets (seed 0, mopa's flags)
#              side by side, in mopa's precision, each stopping with a checkpoint before DEADLINE_S
#              (resumed from RUNS_FROM when it holds their runs).
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
#                 (default device_runs, the committed runs; RUNS_FROM= starts every run afresh)
#   PRECISION     precision of runs that start afresh (default tf32; a resumed run keeps its own)
#   PROBE_STEPS   steps of each probe variant (default 60; the first 10 are not timed)
#   PROBE_S       the probe starts no variant after this many seconds (default 35; ≈ 60 s in all)
#   PROBE_VARIANTS  comma-separated (default: fusionbench.train.probe's DEFAULT_VARIANTS, ten); "plain" alone skips the choice
#   PERF_FLAGS    when set (even empty), no probe: these flags are used (e.g. a second call of a session,
#                 PERF_FLAGS="--cuda-graph --channels-last" as the first call's probe chose)
#   MIN_REST_S    skip step 3 when less time than this is left (default 90)
#   T4_PRESETS    the Table 4 presets of step 3 (default the eight other than mopa)
#   T4_SEEDS      their seeds (default 0); several, e.g. 0,1,2, train together in one process per preset
#                 (fusionbench train --seeds; the probe's seeds3 variants measure what that gains)
#   SWIN_JOBS     the SwinFusion jobs of step 3 (default "swinfusion swinfusion.ct")
#   EXTRA         options added to every training job and to the probe (e.g. a tiny schedule for the CPU
#                 smoke test, tests/train/test_session.py)
#   DEVICE, PYTHON, WHEELS, FB_INSTALL: as scripts/device_train.sh
#
#   SNAPSHOT_S    every this many seconds (default 60) $OUT/mopa.tgz is refreshed with mopa's run folder
#                 (checkpoint every minute), so a command killed at its limit still returns its progress
# The device tool brings back at most 8 files of 16 MiB from $OUT, two folders deep, so the results
# are packed at the end (also when a step fails) into $OUT/session.txt (what happened, for the reader,
# with the probe's table) and tarballs of at most 15 MiB each: $OUT/mopa.tgz (run folder + exported
# weights + probe + logs), $OUT/others.tgz[.partNN] (the step-3 runs).  Unpack with: cat others.tgz* | tar xz (when step 3 ran)
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
PROBE_STEPS="${PROBE_STEPS:-60}"
PROBE_S="${PROBE_S:-35}"
PROBE_VARIANTS="${PROBE_VARIANTS:-}"
PRECISION="${PRECISION:-tf32}"
RUNS_FROM="${RUNS_FROM-device_runs}"
MIN_REST_S="${MIN_REST_S:-90}"
T4_PRESETS="${T4_PRESETS-mask_only attention_only contrast_only decouple_only \
no_mask no_attention no_contrast no_decouple}"
T4_SEEDS="${T4_SEEDS:-0}"
SWIN_JOBS="${SWIN_JOBS-swinfusion swinfusion.ct}"
EXTRA="${EXTRA:-}"
STARTUP_S=25                                 # a job's start-up (imports, pack, CUDA) before its clock starts

say() { echo "device_session [$(($(date +%s) - T0)) s]: $*" | tee -a "$OUT/session.txt" >&2; }
left() { echo $((DEADLINE_S - ($(date +%s) - T0))); }
minutes() { awk -v s="$1" 'BEGIN { m = s / 60; if (m < 0.1) m = 0.1; printf "%.2f", m }'; }

pack_results() {  # tarballs of <= 15 MiB each, one folder deep
  local name="$1"; shift
  [ "$#" -gt 0 ] || return 0
  # written beside and renamed: a kill while packing leaves the last snapshot whole, never a truncated file;
  # tar's exit status 1 ("file changed as we read it": a job still writing at the limit) is a whole archive
  local rc=0
  tar czf "$OUT/$name.tgz.tmp" -C "$WORK" "$@" 2>>"$OUT/session.txt" || rc=$?
  if [ "$rc" -le 1 ]; then mv -f "$OUT/$name.tgz.tmp" "$OUT/$name.tgz"; else rm -f "$OUT/$name.tgz.tmp"; fi
  [ -f "$OUT/$name.tgz" ] || return 0
  if [ "$(stat -c %s "$OUT/$name.tgz")" -gt $((15 * 1024 * 1024)) ]; then
    split -b 15m -d "$OUT/$name.tgz" "$OUT/$name.tgz.part" && rm -f "$OUT/$name.tgz"
  fi
}
snapshots() {  # a command killed at its limit still brings back mopa's run: $OUT/mopa.tgz refreshed every SNAPSHOT_S
  while sleep "$SNAPSHOT_S"; do
    [ -f "$WORK/mopa/runs/mopa/checkpoint.pt" ] || continue
    tar czf "$OUT/mopa.tgz.tmp" -C "$WORK" mopa/runs/mopa 2>/dev/null && mv -f "$OUT/mopa.tgz.tmp" "$OUT/mopa.tgz"
  done
}
SNAPSHOT_S="${SNAPSHOT_S:-60}"
snapshots >/dev/null 2>&1 </dev/null &
SNAPSHOT_PID=$!
finish() {
  local status=$?
  kill "$SNAPSHOT_PID" 2>/dev/null; wait "$SNAPSHOT_PID" 2>/dev/null; rm -f "$OUT/mopa.tgz.tmp"
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
    local name="${line%% *}" labels=() s
    label="$name"
    [[ "$line" =~ --seed\ ([1-9][0-9]*) ]] && label="$label.seed${BASH_REMATCH[1]}"
    labels=("$label")
    if [[ "$line" =~ --seeds\ ([0-9,]+) ]]; then   # several seeds in one process: one run folder each
      labels=()
      for s in ${BASH_REMATCH[1]//,/ }; do if [ "$s" = 0 ]; then labels+=("$name"); else labels+=("$name.seed$s"); fi; done
    fi
    for label in "${labels[@]}"; do
      if [ -n "${RUNS_FROM:-}" ] && [ -f "$RUNS_FROM/$label/checkpoint.pt" ]; then
        cp -r "$RUNS_FROM/$label" "$out/runs/" && say "continuing $label from $RUNS_FROM/$label"
      fi
    done
  done
  printf '%s\n' "$@" | OUT="$out" PACK="$pack" PARALLEL="$parallel" TRAIN_ARGS="$args $EXTRA" RUNS_FROM= \
    "$ROOT/scripts/device_train.sh" - 2>>"$out/device_train.log"
}
say "start: DEVICE=$DEVICE DEADLINE_S=$DEADLINE_S PACK_MOPA=$PACK_MOPA PACK_SWIN=$PACK_SWIN RUNS_FROM=${RUNS_FROM:-none}"
for p in "$PACK_MOPA" "$PACK_SWIN"; do [ -f "$p" ] || say "missing pack $p"; done

# ---------------------------------------------------------------- precision of mopa (kept when resumed)
done_steps=0
prec="$PRECISION"
if [ -n "${RUNS_FROM:-}" ] && [ -f "$RUNS_FROM/mopa/checkpoint.pt" ]; then
  read -r done_steps total_steps prec < <("$PYTHON" - "$RUNS_FROM/mopa" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1] + "/config.json"))["config"]
try:
    prov = json.load(open(sys.argv[1] + "/provenance.json"))
    steps, total = prov["steps_done"], prov["schedule"]["steps"]
except Exception:
    steps, total = 0, "?"
print(steps, total, cfg.get("precision", "fp32"))
PY
)
  say "continuing mopa from $RUNS_FROM/mopa: $done_steps of $total_steps steps done, precision $prec (kept)"
fi

# ---------------------------------------------------------------- 1. the variant probe (one process)
mkdir -p "$WORK/probe"
if [ -n "${PERF_FLAGS+set}" ]; then
  FLAGS="$PERF_FLAGS"
  say "no probe: PERF_FLAGS='$FLAGS'"
else
  probe_args=(mopa --precision "$prec" --steps "$PROBE_STEPS" --max-seconds "$PROBE_S")
  [ -n "$PROBE_VARIANTS" ] && probe_args+=(--variants "$PROBE_VARIANTS")
  read -r -a extra_words <<<"$EXTRA"
  # RUNS_FROM is not passed: the probe trains throwaway models; its own timeout bounds a hang
  OUT="$WORK/probe" PACK="$PACK_MOPA" RUNS_FROM= timeout $((PROBE_S + 90)) \
    "$ROOT/scripts/device_train.sh" --probe "${probe_args[@]}" ${extra_words[@]+"${extra_words[@]}"} \
    2>>"$WORK/probe/device_train.log"
  say "probe (exit $?):"
  cat "$WORK/probe/probe.csv" 2>/dev/null | tee -a "$OUT/session.txt" >&2
  FLAGS="$(cat "$WORK/probe/probe.flags" 2>/dev/null | head -1)"
  if [ ! -f "$WORK/probe/probe.flags" ]; then say "the probe gave no result: plain steps"; fi
fi
say "performance flags for mopa and the Table 4 presets: '${FLAGS}'"

# ---------------------------------------------------------------- 2. mopa (issue 21), alone
m=$(minutes $(( $(left) - STARTUP_S )))
say "mopa: --precision $prec $FLAGS --max-minutes $m"
train "$WORK/mopa" "$PACK_MOPA" 1 "--precision $prec $FLAGS --max-minutes $m --checkpoint-minutes 1" "mopa --seed 0"
say "mopa (exit $?): $(cat "$WORK/mopa/summary.csv" 2>/dev/null | tail -1)"

# ---------------------------------------------------------------- 3. the others, side by side
rest=$(left)
if [ "$rest" -lt "$MIN_REST_S" ]; then
  say "no step 3: $rest s left (< $MIN_REST_S)"
  exit 0
fi
m=$(minutes $((rest - STARTUP_S - 10)))
say "others: --precision $prec --max-minutes $m (SwinFusion: ${SWIN_JOBS:-none}; Table 4, seed 0, '$FLAGS':" \
    "${T4_PRESETS:-none})"
t4=(); swin=(); step3=()
for preset in $T4_PRESETS; do
  if [[ "$T4_SEEDS" == *,* ]]; then t4+=("mopa.$preset --seeds $T4_SEEDS"); else t4+=("mopa.$preset --seed $T4_SEEDS"); fi
done
for job in $SWIN_JOBS; do swin+=("$job"); done
if [ "${#swin[@]}" -gt 0 ]; then
  train "$WORK/issue20" "$PACK_SWIN" "${#swin[@]}" "--precision $prec --max-minutes $m --checkpoint-minutes 1" \
    "${swin[@]}" &
  step3+=($!)
fi
if [ "${#t4[@]}" -gt 0 ]; then
  t4_flags="$FLAGS"   # seeds trained together take no --channels-last (fusionbench/train/seeds.py)
  [[ "$T4_SEEDS" == *,* ]] && t4_flags="${t4_flags//--channels-last/}"
  train "$WORK/issue19" "$PACK_MOPA" "${#t4[@]}" "--precision $prec $t4_flags --max-minutes $m --checkpoint-minutes 1" \
    "${t4[@]}" &
  step3+=($!)
fi
step3_status=""
for pid in "${step3[@]+"${step3[@]}"}"; do   # not a bare `wait`: the snapshot loop never ends
  wait "$pid"; step3_status="$step3_status $?"
done
say "step 3 exit statuses (SwinFusion first, then Table 4, as started):${step3_status:- none}"
for d in issue20 issue19; do
  say "$d: $(tail -n +2 "$WORK/$d/summary.csv" 2>/dev/null | tr '\n' ';')"
done
