% Liu's MST-SR toolbox fusions (VIFB methods/LP_SR: dwt_fuse.m, lp_fuse.m, rp_fuse.m, nsct_fuse.m), unchanged, under GNU Octave.
%
%   octave-cli run_liu_mst.m MST_DIR SHIM_DIR IN_DIR OUT_DIR NAME1,NAME2,...
%
% MST_DIR: VIFB's methods/LP_SR folder (selc.m, es2.m, dec2.m, ... and nsct_toolbox/ with its MEX
% files compiled: mkoctfile --mex atrousc.c zconv2.c zconv2S.c).  SHIM_DIR: this project's shims
% (dwt2/idwt2: Octave has no Wavelet Toolbox).  IN_DIR/<name>.mat holds I1 and I2 (double, 0-255);
% OUT_DIR/<name>.mat gets F_dwt = dwt_fuse(I1, I2, 4), F_lp = lp_fuse(I1, I2, 4, 3, 3),
% F_rp = rp_fuse(I1, I2, 4, 3, 3) and F_nsct = nsct_fuse(I1, I2, [2,3,3,4]): the calls of the toolbox's
% MST_main.m (level = 4).
args = argv();
mst = args{1}; shims = args{2}; in_dir = args{3}; out_dir = args{4}; names = strsplit(args{5}, ',');
pkg load image
addpath(shims); addpath(mst); addpath(fullfile(mst, 'nsct_toolbox'));
for k = 1:numel(names)
  S = load(fullfile(in_dir, [names{k} '.mat']));
  F_lp = lp_fuse(S.I1, S.I2, 4, 3, 3);
  F_rp = rp_fuse(S.I1, S.I2, 4, 3, 3);
  F_nsct = nsct_fuse(S.I1, S.I2, [2, 3, 3, 4]);
  if all(mod(size(S.I1), 16) == 0)
    F_dwt = dwt_fuse(S.I1, S.I2, 4);
  else
    F_dwt = [];  % the stand-in dwt2 takes even sizes at every level only
  end
  save('-v7', fullfile(out_dir, [names{k} '.mat']), 'F_dwt', 'F_lp', 'F_rp', 'F_nsct');
  printf('%s done\n', names{k});
end
