function [a, h, v, d] = dwt2(x, wname, varargin)
  % MATLAB Wavelet Toolbox dwt2 for the one case Liu's dwt_fuse.m uses: dwt2(X, 'db1', 'mode', 'per')
  % on an image of even size (own implementation from the documentation: orthonormal Haar filters
  % Lo_D = [c c], Hi_D = [-c c], c = 1/sqrt(2); 'per' pairs samples (1,2), (3,4), ...).
  % The products and sums are formed in PyWavelets' order (down the columns first; c*x(2k) + c*x(2k-1),
  % -c*x(2k) + c*x(2k-1)), so that the round-off equals fusionbench's transform and a comparison checks
  % the fusion code alone; which sub-band is called H or V does not matter to dwt_fuse.m (one rule for all).
  % Other wavelets, modes or odd sizes are refused.
  if ~strcmp(wname, 'db1') || numel(varargin) ~= 2 || ~strcmp(varargin{2}, 'per')
    error('dwt2 stand-in: only dwt2(X, ''db1'', ''mode'', ''per'')');
  end
  if any(mod(size(x), 2))
    error('dwt2 stand-in: even sizes only');
  end
  c = 0.7071067811865476;
  lo = c * x(2:2:end, :) + c * x(1:2:end, :);
  hi = -c * x(2:2:end, :) + c * x(1:2:end, :);
  a = c * lo(:, 2:2:end) + c * lo(:, 1:2:end);
  v = -c * lo(:, 2:2:end) + c * lo(:, 1:2:end);
  h = c * hi(:, 2:2:end) + c * hi(:, 1:2:end);
  d = -c * hi(:, 2:2:end) + c * hi(:, 1:2:end);
end
