% Liu et al.'s CNN fusion as VIFB ships it (xingchenzhang/VIFB @ 22b2ea9, methods/CNN/run_CNN.m with its
% model/cnnmodel.mat, band_fuse.m, es2.m, maxpooling_s2.m and Mertens' pyramid/), unchanged, on pairs made by
% liu_mst_inputs.py: I1 (functional/CT/IR) takes run_CNN's infrared slot, I2 (MRI/visible) its visible slot,
% both grey 8-bit, written as PNG for run_CNN to read; its uint8 result is saved as OUT_DIR/NAME.png.
% Usage: octave-cli run_vifb_cnn.m VIFB_CNN_DIR IN_DIR OUT_DIR NAME ...
args = argv();
pkg load image;
cnn_dir = make_absolute_filename(args{1});
in_dir = make_absolute_filename(args{2});
out_dir = make_absolute_filename(args{3});
cd(cnn_dir);  % run_CNN.m loads model/cnnmodel.mat and adds pyramid/ relative to its folder
for k = 4:numel(args)
  name = args{k};
  S = load(fullfile(in_dir, [name '.mat']));
  ir = fullfile(out_dir, [name '_ir.png']);
  vi = fullfile(out_dir, [name '_vi.png']);
  imwrite(uint8(S.I1), ir);
  imwrite(uint8(S.I2), vi);
  F = run_CNN(struct('img', vi), struct('img', ir), 0);
  imwrite(F, fullfile(out_dir, [name '.png']));
  delete(ir); delete(vi);
  printf('%s: %dx%d\n', name, size(F, 1), size(F, 2));
end
