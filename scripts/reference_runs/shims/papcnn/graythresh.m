function level = graythresh(I)
  % MATLAB's graythresh, written here from its documented algorithm (Octave's own graythresh.m computes
  % Otsu's between-class variance another way, so its level can differ in rounding at ties):
  % Otsu's threshold of the 256-bin histogram of im2uint8(I), as otsuthresh computes it.
  I = im2uint8(I(:));
  counts = accumarray(double(I) + 1, 1, [256 1]);
  p = counts / sum(counts);
  omega = cumsum(p);
  mu = cumsum(p .* (1:256)');
  sigma_b_squared = (mu(end) * omega - mu).^2 ./ (omega .* (1 - omega));
  maxval = max(sigma_b_squared);
  if isfinite(maxval)
    level = (mean(find(sigma_b_squared == maxval)) - 1) / 255;
  else
    level = 0.0;
  end
end
