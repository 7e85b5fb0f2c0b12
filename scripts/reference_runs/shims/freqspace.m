function [f1, f2] = freqspace(n, flag)
  % MATLAB freqspace: frequency vectors for an n(1)-by-n(2) matrix (own implementation from the documentation)
  if numel(n) == 1, n1 = n; n2 = n; else n1 = n(1); n2 = n(2); end
  f1 = ((0:n2-1) - floor(n2/2)) * (2 / n2);
  f2 = ((0:n1-1) - floor(n1/2)) * (2 / n1);
  if nargin > 1 && strcmp(flag, 'meshgrid')
    [f1, f2] = meshgrid(f1, f2);
  end
end
