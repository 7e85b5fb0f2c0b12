#!/usr/bin/env bash
# The official SDNet, U2Fusion, MATR and SwinFusion code on the cases whose results are committed beside the tests.
#   PY=<python with tensorflow-cpu 2.15> FB_PY=<fusionbench's python (torch 2.13)> SHARED=../shared \
#   SDNET=<SDNet checkout> U2FUSION=<U2Fusion checkout> MATR=<MATR checkout> SWINFUSION=<SwinFusion checkout> \
#     bash scripts/reference_runs/official_python/run_all.sh OUT_DIR
# then: python scripts/reference_runs/official_python/collect.py OUT_DIR   (writes tests/methods/tf_*/)
set -euo pipefail
OUT=$1; HERE=$(cd "$(dirname "$0")" && pwd)
S=$(cd "$SHARED" && pwd); H=$S/data/harvard; T=$S/data/tno
O=$S/official/sdnet/inputs; U=$S/official/u2fusion/inputs/medical; M=$S/official/matr/inputs
"$PY" "$HERE/run_sdnet_tf.py" "$SDNET/Medical" "$S/official/sdnet/weights" "$OUT/sdnet" \
  "$O/Test_Function/1.png:$O/Test_Structure/1.png" "$O/Test_Function/2.png:$O/Test_Structure/2.png" \
  "$O/Test_Function/3.png:$O/Test_Structure/3.png" "$H/MRI-CT/CT/16003.png:$H/MRI-CT/MRI/16003.png@37,21,97,125" \
  "$T/ir/01.png:$T/vis/01.png@100,150,300,400"
"$PY" "$HERE/run_sdnet_colour.py" "$SDNET/Medical" "$S/official/sdnet/weights" "$OUT/sdnet_colour" \
  "$H/MRI-PET/PET/25030.png:$H/MRI-PET/MRI/25030.png" "$H/MRI-SPECT/SPECT/10007.png:$H/MRI-SPECT/MRI/10007.png" \
  "$H/MRI-PET/PET/41076.png:$H/MRI-PET/MRI/41076.png@40,30,120,150"
"$PY" "$HERE/run_u2fusion_tf.py" "$U2FUSION" "$S/official/u2fusion/weights" "$OUT/u2fusion" \
  "$U/pet/2.png:$U/mri/2.png" "$U/pet/3.png:$U/mri/3.png" "$U/pet/4.png:$U/mri/4.png" \
  "$H/MRI-PET/PET/25030.png:$H/MRI-PET/MRI/25030.png" "$H/MRI-CT/CT/16003.png:$H/MRI-CT/MRI/16003.png@37,21,97,125" \
  "$H/MRI-SPECT/SPECT/10007.png:$H/MRI-SPECT/MRI/10007.png@40,30,120,150" "$T/vis/01.png:$T/ir/01.png@100,150,300,400"
"$FB_PY" "$HERE/run_matr_official.py" "$MATR" "$S/official/matr/weights/model_10.pth" "$OUT/matr" \
  "$M/PET-MRI/PET.bmp:$M/PET-MRI/MRI.bmp" "$M/SPECT-MRI/SPECT.bmp:$M/SPECT-MRI/MRI.bmp" \
  "$H/MRI-PET/PET/25030.png:$H/MRI-PET/MRI/25030.png" "$H/MRI-CT/CT/16003.png:$H/MRI-CT/MRI/16003.png" \
  "$H/MRI-SPECT/SPECT/10007.png:$H/MRI-SPECT/MRI/10007.png@60,50,128,128"
ROOT=$(cd "$HERE/../../.." && pwd)
"$FB_PY" "$HERE/run_swinfusion_official.py" "$SWINFUSION" "$ROOT/methods/swinfusion_weights/mri_pet_spect.pth" \
  "$OUT/swinfusion" "$H/MRI-PET/MRI/25030.png:$H/MRI-PET/PET/25030.png" \
  "$H/MRI-SPECT/MRI/10007.png:$H/MRI-SPECT/SPECT/10007.png@40,30,120,150"
"$FB_PY" "$HERE/run_swinfusion_official.py" "$SWINFUSION" "$ROOT/methods/swinfusion_weights/mri_ct.pth" \
  "$OUT/swinfusion_ct" "$H/MRI-CT/MRI/2006.png:$H/MRI-CT/CT/2006.png" \
  "$H/MRI-CT/MRI/20010.png:$H/MRI-CT/CT/20010.png@50,40,97,130"
