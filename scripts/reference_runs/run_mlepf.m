% MLEPF (WeiTan1992/MLCF-MLMG-PCNN @ a3723a9): the official script.m, unchanged, on one pair.
% As in the shared Octave runs: a grey input is replicated to 3 channels (rgb2hsv needs M x N x 3;
% the repository's own MRI.png is RGB with R = G = B), the result F is written with im2uint8, and
% mlepf_shim/ shadows multilevel_morph.m (MATLAB's default decomposition of strel('disk', R), which
% Octave 7.3 refuses) and the display calls (figure, imshow, title: no-ops).
% Usage: octave-cli run_mlepf.m MLEPF_CODE_DIR MRI.png FUNCTIONAL.png OUT.png
args = argv();
out = make_absolute_filename(args{4});
code = make_absolute_filename(args{1});
addpath(code);
addpath(fullfile(fileparts(make_absolute_filename(mfilename('fullpath'))), 'mlepf_shim'));
pkg load image;
work = tempname(); mkdir(work);
names = {'MRI.png', 'PET.png'};  % the files script.m reads from its folder
for k = 1:2
  I = imread(make_absolute_filename(args{k + 1}));
  if size(I, 3) == 1, I = repmat(I, [1 1 3]); end
  imwrite(I, fullfile(work, names{k}));
end
cd(work);
source(fullfile(code, 'script.m'));  % runs here (reads ./MRI.png, ./PET.png); defines F
imwrite(im2uint8(F), out);
printf('%s: %dx%dx%d\n', out, size(F, 1), size(F, 2), size(F, 3));
