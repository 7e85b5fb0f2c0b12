% NSCT coefficients of one input with the Cunha-Zhou-Do toolbox (MorvanLi/DTNP-MIF @ 682a13a,
% nsct_toolbox/, MEX files compiled with `mkoctfile --mex atrousc.c zconv2.c zconv2S.c`).
% Usage: octave-cli run_nsct.m NSCT_TOOLBOX_DIR INPUT.mat "[levels]" DFILT PFILT OUT.mat
% INPUT.mat holds x (double).  OUT.mat: lowpass, band_l<l> (H x W x ndir, l = 1 the coarsest)
% and recon_max_abs_err of the toolbox's own nsctrec.
args = argv();
addpath(args{1}); addpath(fullfile(fileparts(mfilename('fullpath')), 'shims'));
pkg load image;
s = load(args{2}); x = s.x; lev = str2num(args{3}); dfilt = args{4}; pfilt = args{5};
y = nsctdec(x, lev, dfilt, pfilt);
lowpass = y{1};
names = {'lowpass'};
for l = 1:numel(lev)
  b = y{l + 1};
  if iscell(b)
    B = zeros(size(x, 1), size(x, 2), numel(b));
    for d = 1:numel(b), B(:, :, d) = b{d}; end
  else
    B = b;
  end
  eval(sprintf('band_l%d = B;', l));
  names{end + 1} = sprintf('band_l%d', l);
end
r = nsctrec(y, dfilt, pfilt);
recon_max_abs_err = max(abs(r(:) - x(:)));
names{end + 1} = 'recon_max_abs_err';
save('-v7', args{6}, names{:});
printf('%s: reconstruction error %.3g\n', args{6}, recon_max_abs_err);
