% Run SDNet's official input_process.m or output_process.m (Medical/RGB2YCbCr) under GNU Octave.
%
%   octave-cli run_sdnet_colour_scripts.m MEDICAL_DIR WORK_DIR N input|output
%
% The scripts loop over 1:300 and read/write Windows-style relative names such as
% 'Medical\Function\RGB\1.png'; on Linux such a name is one file in the working
% directory, so WORK_DIR holds files with those literal names.  The only change made
% to the script text is the loop's upper bound (300 -> N); RGB2YCbCr.m and
% YCbCr2RGB.m are used from the repository as they are.
args = argv();
medical_dir = args{1}; work_dir = args{2}; n = str2double(args{3}); phase = args{4};
addpath(fullfile(medical_dir, 'RGB2YCbCr'));
script = fileread(fullfile(medical_dir, 'RGB2YCbCr', [phase '_process.m']));
assert(numel(strfind(script, '1:300')) == 1, 'expected one loop 1:300');
script = strrep(script, '1:300', sprintf('1:%d', n));
cd(work_dir);
eval(script);
