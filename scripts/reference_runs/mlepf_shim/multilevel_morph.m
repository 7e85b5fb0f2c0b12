function FM = multilevel_morph(img, num)
  % multilevel_morph (sum over scales 2i+1 of the morphological gradient by strel('disk', scale),
  % divided by the scale) with MATLAB's default
  % decomposition of that disk (N = 4, which Octave 7.3 refuses): the Minkowski sum of the periodic
  % lines PL(a, (1,0)), PL(a, (0,1)), PL(d, (1,1)), PL(d, (-1,1)), d = floor(k/sqrt(2)), a = floor(k)
  % (+ the compensating axis lines when they reach short of R), k = 2R/(cot(pi/8) + 1/sin(pi/8)).
  % Dilation pads with -Inf and erosion with +Inf, as MATLAB does for a decomposed strel.
  img = double(img);
  FM = double(zeros(size(img)));
  for ii = 1 : num
    scale = 2 * ii + 1;
    [a, d] = disk_lines(scale);
    g = line_dilate(img, a, d) - (-line_dilate(-img, a, d));
    FM = FM + 1 / (scale) * (g);
  end
end

function [a, d] = disk_lines(R)
  theta = pi / 8;
  k = 2 * R / (cot(theta) + 1 / sin(theta));
  a = floor(k); d = floor(k / sqrt(2));
  len = 2 * (R - (a + 2 * d) - 1) + 1;
  if len >= 3
    a = a + (len - 1) / 2;
  end
end

function y = line_dilate(x, a, d)
  P = a + 2 * d + 1;
  [h, w] = size(x);
  c = -Inf(h + 2 * P, w + 2 * P);
  c(P + 1:P + h, P + 1:P + w) = x;
  steps = {[1 0], a; [0 1], a; [1 1], d; [-1 1], d};
  for s = 1:4
    v = steps{s, 1};
    for k = 1:steps{s, 2}
      c = max(c, max(circshift(c, v), circshift(c, -v)));
    end
  end
  y = c(P + 1:P + h, P + 1:P + w);
end
