% DTNP-MIF (MorvanLi/DTNP-MIF @ 682a13a): the official Fuse_NSCT_DTNP.m on one pair, as its main.m
% calls it (A = image 1, the CT or functional luma; B = image 2, the MRI; both double(uint8)/255),
% written as uint8(F).  The neuron model DTNP_toolbox/DTNP.p is P-code, which Octave cannot run: put
% DTNP.m of XHU-GMC/DTNP-IVIF @ 145fcb2 in its place (the shared runs' proxy, which reproduces the
% repository's MATLAB results bit for bit; its per-pixel loops may be written as masks for speed, the
% same operations in the same order).  NSCT_TOOLBOX_DIR holds the toolbox with its MEX files compiled
% (see run_nsct.m).  The display calls go to the no-ops in mlepf_shim/.
% Usage: octave-cli run_dtnp.m DTNP_TOOLBOX_DIR NSCT_TOOLBOX_DIR IMAGE1.png IMAGE2.png OUT.png
args = argv();
addpath(args{2}); addpath(args{1});
addpath(fullfile(fileparts(make_absolute_filename(mfilename('fullpath'))), 'mlepf_shim'));
pkg load image;
A = double(imread(args{3})) / 255;
B = double(imread(args{4})) / 255;
F = Fuse_NSCT_DTNP(A, B);
imwrite(uint8(F), args{5});
printf('%s: %dx%d\n', args{5}, size(F, 1), size(F, 2));
