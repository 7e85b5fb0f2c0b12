function h = ftrans2(b, t)
  % MATLAB's ftrans2 (McClellan transform), which Octave's image package lacks, forwarded to the
  % NSCT toolbox's own mctrans.m: the same algorithm (dfilters('vk') calls it).
  h = mctrans(b, t);
end
