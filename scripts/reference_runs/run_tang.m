% Score the crop triples with Linfeng-Tang/Evaluation-for-Image-Fusion, as analysis_Reference does
% (ir := A, vi := B): the easy=1 set in one call, then Nabf (HEAD's argument order and the documented
% one), MEF-SSIM ("MS_SSIM") and, with FMI=1, FMI on DCT features and on raw pixels.
% Usage: octave-cli run_tang.m REF_EVALUATION_DIR TRIPLES_DIR id1,id2,... FMI(0|1)
args = argv();
triples = args{2}; ids = strsplit(args{3}, ','); fmi = str2double(args{4});
pkg load image; pkg load signal;
addpath(fullfile(fileparts(mfilename('fullpath')), 'shims'));
addpath(args{1});
labels = {'EN', 'SF', 'SD', 'PSNR', 'MSE', 'MI', 'VIF', 'AG', 'CC', 'SCD', 'Qabf'};
for t = 1:numel(ids)
  id = ids{t};
  A = imread(fullfile(triples, [id '_A.png']));
  B = imread(fullfile(triples, [id '_B.png']));
  F = imread(fullfile(triples, [id '_F.png']));
  a = im2double(A) * 255.0; b = im2double(B) * 255.0; f = im2double(F) * 255.0;
  if fmi == 0
    [EN, SF, SD, PSNR, MSE, MI, VIF, AG, CC, SCD, Qabf] = analysis_Reference(F, A, B, 1);
    vals = [EN, SF, SD, PSNR, MSE, MI, VIF, AG, CC, SCD, Qabf];
    for k = 1:numel(labels)
      printf('tang,%s,%s,%.17g\n', labels{k}, id, vals(k));
    end
    printf('tang,Nabf,%s,%.17g\n', id, analysis_nabf(a, b, f));
    printf('tang,Nabf[args-as-documented],%s,%.17g\n', id, analysis_nabf(f, a, b));
    seq = zeros(size(a, 1), size(a, 2), 2); seq(:, :, 1) = a; seq(:, :, 2) = b;
    printf('tang,MS_SSIM,%s,%.17g\n', id, analysis_ms_ssim(seq, f));
  else
    printf('tang,FMI_dct,%s,%.17g\n', id, analysis_fmi(a, b, f, 'dct')); fflush(stdout);
    printf('tang,FMI_none[feature=''none''],%s,%.17g\n', id, analysis_fmi(a, b, f, 'none'));
  end
  fflush(stdout);
end
