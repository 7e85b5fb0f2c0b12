% LEGFF (uzeful/LEGFF @ ae0ccee): the official Main.m on pairs made by case_inputs.py, its algorithm lines
% unchanged.  Main.m is a script with its inputs hard-coded, so this driver reads it and replaces only its I/O
% at run time (as the shared Octave runs' copy did): no 'clear', no figures, dataID from the command line,
% one image, and the dataset's if-block of imread calls replaced by this case's files: image 1 the MRI
% (dataID 1-3) or the infrared image (dataID 4), image 2 the functional image or the visible one.
% shims/legff holds MATLAB's imguidedfilter, rgb2ycbcr and ycbcr2rgb (uint8), written from their documentation.
% Usage: octave-cli run_legff.m LEGFF_DIR IN_DIR OUT_DIR DATA_ID NAME ...
args = argv();
here = fileparts(make_absolute_filename(mfilename('fullpath')));
pkg load image;
addpath(args{1});
addpath(fullfile(here, 'shims', 'legff'));
assert(strcmp(which('rgb2ycbcr'), fullfile(here, 'shims', 'legff', 'rgb2ycbcr.m')));
main_text = fileread(fullfile(args{1}, 'Main.m'));
first = strfind(main_text, '    if dataID == 1');
last = strfind(main_text, '    % transform color images');
assert(numel(first) == 1 && numel(last) == 1);
main_text = [main_text(1:first - 1) '    img1 = imread(IMG1); img2 = imread(IMG2); fileName = OUT;' char(10) main_text(last:end)];
main_text = strrep(main_text, 'clc, clear, close all;', '');
main_text = strrep(main_text, 'is_show_res = true;', 'is_show_res = false;');
main_text = strrep(main_text, 'dataID = 1;', sprintf('dataID = %d;', str2double(args{4})));
main_text = regexprep(main_text, 'ImgNum = \d+;', 'ImgNum = 1;');
for k = 5:numel(args)
  name = args{k};
  mri = fullfile(args{2}, [name '_mri.png']);
  other = fullfile(args{2}, [name '_other.png']);
  if str2double(args{4}) == 4
    IMG1 = other; IMG2 = mri;  % infrared first, as Main.m reads IR<n> then VIS<n>
  else
    IMG1 = mri; IMG2 = other;
  end
  OUT = fullfile(args{3}, [name '.png']);
  eval(main_text);
  printf('%s: %dx%dx%d\n', name, size(result, 1), size(result, 2), size(result, 3));
end
