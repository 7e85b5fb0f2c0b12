% NSST-PAPCNN-Fusion (yuliu316316/NSST-PAPCNN-Fusion @ 04454e9): the official fuse_NSST_PAPCNN.m on pairs
% made by case_inputs.py, as its two demos call it.  Grey pair (Script_gray.m): A = the CT/IR image,
% B = the MRI/visible image.  Colour functional image (Script_color.m): A = the MRI, B = the Y of the
% functional image's ConvertRGBtoYUV, the result back through ConvertYUVtoRGB.  Both: double(uint8)/255 in,
% uint8(F*255) out.  The repository's shearlet/atrousc.c must be compiled (mkoctfile --mex atrousc.c);
% graythresh is MATLAB's (shims/papcnn/graythresh.m, put before the image package's).
% Usage: octave-cli run_papcnn.m PAPCNN_DIR IN_DIR OUT_DIR NAME ...   (IN_DIR/NAME_mri.png, IN_DIR/NAME_other.png)
args = argv();
here = fileparts(make_absolute_filename(mfilename('fullpath')));
pkg load image;
addpath(genpath(fullfile(args{1}, 'shearlet'))); addpath(args{1});
addpath(fullfile(here, 'shims', 'papcnn'));
assert(strcmp(which('graythresh'), fullfile(here, 'shims', 'papcnn', 'graythresh.m')));
for k = 4:numel(args)
  name = args{k};
  mri = double(imread(fullfile(args{2}, [name '_mri.png']))) / 255;
  other = double(imread(fullfile(args{2}, [name '_other.png']))) / 255;
  if size(other, 3) == 3
    yuv = ConvertRGBtoYUV(other);
    yuv(:, :, 1) = fuse_NSST_PAPCNN(mri, yuv(:, :, 1));
    F = ConvertYUVtoRGB(yuv);
  else
    F = fuse_NSST_PAPCNN(other, mri);
  end
  imwrite(uint8(F * 255), fullfile(args{3}, [name '.png']));
  printf('%s: %dx%dx%d\n', name, size(F, 1), size(F, 2), size(F, 3));
end
