% MDLatLRRv2's fusion core (songxujay/MDLatLRRv2 @ d9f46b1: vector_fusion_method.m and the files
% it calls, with the preallocation line of the README added to vector_decomposition.m) on a
% non-square crop; writes uint8(F*255) of the fused luma for de_level 1 and 2.
% Usage: octave-cli run_mdl.m MDL_CODE_DIR MODELS_DIR INPUT.mat OUT_DIR
% INPUT.mat: mri (grey, [0, 1]) and pet (RGB, [0, 1]); the PET goes through ConvertRGBtoYUV as '-2'.
args = argv();
addpath(args{1});
load(fullfile(args{2}, 'MD_L_16_detail_mix_2000_s1000.mat'));
load(fullfile(args{2}, 'MD_P_16_detail_mix_2000_s1000.mat'));
s = load(args{3});
yuv = ConvertRGBtoYUV(s.pet);
for level = 1:2
  F = vector_fusion_method(s.mri, yuv(:, :, 1), L_16, P_16, 16, level, 'nu', 1, 1);  % official loop's settings
  imwrite(uint8(F * 255), fullfile(args{4}, sprintf('mdl_level%d.png', level)));      % uint8(NaN) = 0
  printf('level %d: %d NaN pixels\n', level, sum(isnan(F(:))));
end
