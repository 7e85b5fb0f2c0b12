function rgb = ycbcr2rgb(ycbcr)
  % MATLAB's ycbcr2rgb for a uint8 YCbCr image, written from its documentation: the inverse of the
  % 3-decimal matrix, each plane an imlincomb of Y, Cb, Cr and an offset (double sums, uint8 out).
  T = [65.481 128.553 24.966; -37.797 -74.203 112; 112 -93.786 -18.214];
  Tinv = inv(T);
  offset = 255 * Tinv * [16; 128; 128];
  x = double(ycbcr);
  rgb = zeros(size(ycbcr), 'uint8');
  for p = 1:3
    rgb(:, :, p) = uint8(255 * Tinv(p, 1) * x(:, :, 1) + 255 * Tinv(p, 2) * x(:, :, 2) + 255 * Tinv(p, 3) * x(:, :, 3) - offset(p));
  end
end
