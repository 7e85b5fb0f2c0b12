% Score the crop triples with VIFB's or MEFB's metric files, called as their compute_metrics.m does.
% Usage: octave-cli run_vifb_mefb.m vifb|mefb REF_METRICS_DIR TRIPLES_DIR id1,id2,...
% Prints one line per value: reference,label,triple,value (%.17g) or ERROR message.
args = argv();
ref = args{1}; ids = strsplit(args{4}, ',');
triples = args{3};
pkg load image; pkg load signal;
addpath(fullfile(fileparts(mfilename('fullpath')), 'shims'));
addpath(args{2});
if strcmp(ref, 'vifb')
  names = {'Cross_entropy', 'Entropy', 'Mutinf', 'Psnr', 'Avg_gradient', 'Edge_intensity', 'Qabf', ...
           'Variance', 'Spatial_frequency', 'Rmse', 'Ssim', 'Qcb', 'Qcv'};
else
  names = {'Cross_entropy', 'Entropy', 'NMI', 'Psnr', 'Qncie', 'TE', 'Avg_gradient', 'Edge_intensity', ...
           'Qabf', 'Qp', 'SD', 'Spatial_frequency', 'Qc', 'Qw', 'Qy', 'MEF_SSIM', 'Qcb', 'Qcv', 'VIF'};
end
for t = 1:numel(ids)
  id = ids{t};
  A = imread(fullfile(triples, [id '_A.png']));  % VIFB: imgVI; MEFB: imgA
  B = imread(fullfile(triples, [id '_B.png']));  % VIFB: imgIR; MEFB: imgB
  F = imread(fullfile(triples, [id '_F.png']));
  for k = 1:numel(names)
    try
      if strcmp(names{k}, 'MEF_SSIM')  % it calls rgb2gray: grey replicated to three channels
        v = feval(['metrics' names{k}], cat(3, A, A, A), cat(3, B, B, B), cat(3, F, F, F));
      else
        v = feval(['metrics' names{k}], A, B, F);
      end
      printf('%s,%s,%s,%.17g\n', ref, names{k}, id, double(v));
    catch err
      printf('%s,%s,%s,ERROR %s\n', ref, names{k}, id, strrep(err.message, ',', ';'));
    end
    fflush(stdout);
  end
end
