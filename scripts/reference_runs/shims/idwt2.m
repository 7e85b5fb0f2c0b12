function x = idwt2(a, h, v, d, wname, varargin)
  % Inverse of the dwt2 stand-in beside it: idwt2(A, H, V, D, 'db1', 'mode', 'per') (own implementation),
  % its products and sums in PyWavelets' order (along the rows first; c*a + c*d, c*a - c*d), so that the
  % result's round-off, which decides MATLAB uint8() at exact halves, equals fusionbench's transform.
  if ~strcmp(wname, 'db1') || numel(varargin) ~= 2 || ~strcmp(varargin{2}, 'per')
    error('idwt2 stand-in: only idwt2(A, H, V, D, ''db1'', ''mode'', ''per'')');
  end
  c = 0.7071067811865476;
  lo = zeros(size(a, 1), 2 * size(a, 2)); hi = lo;
  lo(:, 1:2:end) = c * a + c * v; lo(:, 2:2:end) = c * a - c * v;
  hi(:, 1:2:end) = c * h + c * d; hi(:, 2:2:end) = c * h - c * d;
  x = zeros(2 * size(lo, 1), size(lo, 2));
  x(1:2:end, :) = c * lo + c * hi; x(2:2:end, :) = c * lo - c * hi;
end
