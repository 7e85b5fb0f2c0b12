function ycbcr = rgb2ycbcr(rgb)
  % MATLAB's rgb2ycbcr for a uint8 RGB image, written from its documentation: the BT.601 studio-swing
  % matrix with 3 decimals on the 0-255 scale, each plane an imlincomb of R, G, B (double sums, uint8 out).
  T = [65.481 128.553 24.966; -37.797 -74.203 112; 112 -93.786 -18.214] / 255;
  offset = [16 128 128];
  x = double(rgb);
  ycbcr = zeros(size(rgb), 'uint8');
  for p = 1:3
    ycbcr(:, :, p) = uint8(T(p, 1) * x(:, :, 1) + T(p, 2) * x(:, :, 2) + T(p, 3) * x(:, :, 3) + offset(p));
  end
end
