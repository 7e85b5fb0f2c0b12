function B = blkproc(A, blk, border, fun)
  % MATLAB blkproc (documented behaviour): zero-pad A to whole blocks, apply fun to each block
  % (with its border, zero-padded too) and tile the results.
  m = blk(1); n = blk(2); mb = border(1); nb = border(2);
  [M, N] = size(A);
  mr = ceil(M / m); nc = ceil(N / n);
  P = zeros(mr * m + 2 * mb, nc * n + 2 * nb, class(A));
  P(mb + 1:mb + M, nb + 1:nb + N) = A;
  C = cell(mr, nc);
  for i = 1:mr
    for j = 1:nc
      C{i, j} = fun(P((i - 1) * m + 1:i * m + 2 * mb, (j - 1) * n + 1:j * n + 2 * nb));
    end
  end
  B = cell2mat(C);
end
