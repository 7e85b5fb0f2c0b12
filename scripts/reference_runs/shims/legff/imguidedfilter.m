function q = imguidedfilter(A, G, varargin)
  % MATLAB's imguidedfilter for double grey images, written here from its documentation (Octave's image
  % package has none): He et al.'s guided filter of A with guide G, box means over 'NeighborhoodSize'
  % (default [5 5]) with replicate padding (imboxfilt's default), 'DegreeOfSmoothing' default
  % 0.01*diff(getrangefromclass(G))^2 = 0.01 for a double guide.
  nhood = [5 5];
  smoothing = 0.01;
  for k = 1:2:numel(varargin)
    switch lower(varargin{k})
      case 'neighborhoodsize'
        nhood = varargin{k + 1};
        if isscalar(nhood), nhood = [nhood nhood]; end
      case 'degreeofsmoothing'
        smoothing = varargin{k + 1};
    end
  end
  box = @(x) imfilter(x, ones(nhood) / prod(nhood), 'replicate');
  mean_g = box(G);
  mean_a = box(A);
  var_g = box(G .* G) - mean_g .* mean_g;
  cov_ga = box(G .* A) - mean_g .* mean_a;
  a = cov_ga ./ (var_g + smoothing);
  b = mean_a - a .* mean_g;
  q = box(a) .* G + box(b);
end
