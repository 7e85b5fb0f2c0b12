"""The sections of a report, one module per job, each a function of a :class:`..context.ReportContext`.

- :mod:`.per_dataset`: Tables 1–3 style per dataset, the other methods' table, confidence intervals,
  rank tests, the highlighted method against each other method, box plots and CD diagrams;
- :mod:`.fused_figures`: the fused images for the figures (Fig. 2 masks, the qualitative grids);
- :mod:`.skipped`: the methods without results on a dataset, and why; the failures;
- :mod:`.table4`: Table 4 over training seeds, the per-component verdicts, Figs. 10–11;
- :mod:`.table5`: Table 5 (profiles, the run's seconds or asv);
- :mod:`.paper`: the paper's claims and published tables beside this run.

:func:`fusionbench.report.build.build_report` calls them in page order.
"""
