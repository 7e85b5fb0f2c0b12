#!/usr/bin/env bash
# The wider runs behind docs/fidelity.md's figures (not committed; ~15 MB of results):
# SDNet grey 48 pairs, SDNet colour 40, U2Fusion 88, MATR 62, SwinFusion 20 + 10.  Same variables as run_all.sh; then
#   FUSIONBENCH_HOME=... .venv/bin/python scripts/reference_runs/official_python/agreement.py OUT_DIR
set -euo pipefail
OUT=$1; HERE=$(cd "$(dirname "$0")" && pwd)
S=$(cd "$SHARED" && pwd); H=$S/data/harvard; T=$S/data/tno
O=$S/official/sdnet/inputs; U=$S/official/u2fusion/inputs/medical; M=$S/official/matr/inputs
pick() { ls "$H/$1/$2" | sed 's/\.png$//' | shuf -n "$3" --random-source=<(yes "$4"); }
pet=$(pick MRI-PET PET 20 7); spect=$(pick MRI-SPECT SPECT 20 8); ct=$(pick MRI-CT CT 20 9)
colour=(); for i in $pet; do colour+=("$H/MRI-PET/PET/$i.png:$H/MRI-PET/MRI/$i.png"); done
for i in $spect; do colour+=("$H/MRI-SPECT/SPECT/$i.png:$H/MRI-SPECT/MRI/$i.png"); done
grey=(); for i in $ct; do grey+=("$H/MRI-CT/CT/$i.png:$H/MRI-CT/MRI/$i.png"); done
tno_ir_first=(); tno_vis_first=()
for f in $(ls "$T/ir"); do tno_ir_first+=("$T/ir/$f:$T/vis/$f"); tno_vis_first+=("$T/vis/$f:$T/ir/$f"); done
"$PY" "$HERE/run_sdnet_tf.py" "$SDNET/Medical" "$S/official/sdnet/weights" "$OUT/sdnet" \
  "$O/Test_Function/1.png:$O/Test_Structure/1.png" "$O/Test_Function/2.png:$O/Test_Structure/2.png" \
  "$O/Test_Function/3.png:$O/Test_Structure/3.png" "${grey[@]}" "${tno_ir_first[@]}"
"$PY" "$HERE/run_sdnet_colour.py" "$SDNET/Medical" "$S/official/sdnet/weights" "$OUT/sdnet_colour" "${colour[@]}"
"$PY" "$HERE/run_u2fusion_tf.py" "$U2FUSION" "$S/official/u2fusion/weights" "$OUT/u2fusion" \
  "$U/pet/2.png:$U/mri/2.png" "$U/pet/3.png:$U/mri/3.png" "$U/pet/4.png:$U/mri/4.png" \
  "${colour[@]}" "${grey[@]}" "${tno_vis_first[@]}"
"$FB_PY" "$HERE/run_matr_official.py" "$MATR" "$S/official/matr/weights/model_10.pth" "$OUT/matr" \
  "${colour[@]}" "${grey[@]}" "$M/PET-MRI/PET.bmp:$M/PET-MRI/MRI.bmp" "$M/SPECT-MRI/SPECT.bmp:$M/SPECT-MRI/MRI.bmp"
ROOT=$(cd "$HERE/../../.." && pwd)
mri_first_colour=(); for i in $(echo $pet | cut -d' ' -f1-10) ; do mri_first_colour+=("$H/MRI-PET/MRI/$i.png:$H/MRI-PET/PET/$i.png"); done
for i in $(echo $spect | cut -d' ' -f1-10); do mri_first_colour+=("$H/MRI-SPECT/MRI/$i.png:$H/MRI-SPECT/SPECT/$i.png"); done
mri_first_ct=(); for i in $(echo $ct | cut -d' ' -f1-10); do mri_first_ct+=("$H/MRI-CT/MRI/$i.png:$H/MRI-CT/CT/$i.png"); done
"$FB_PY" "$HERE/run_swinfusion_official.py" "$SWINFUSION" "$ROOT/methods/swinfusion_weights/mri_pet_spect.pth" \
  "$OUT/swinfusion" "${mri_first_colour[@]}"
"$FB_PY" "$HERE/run_swinfusion_official.py" "$SWINFUSION" "$ROOT/methods/swinfusion_weights/mri_ct.pth" \
  "$OUT/swinfusion_ct" "${mri_first_ct[@]}"
