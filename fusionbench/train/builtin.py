"""Import the modules that register fusionbench's own trainers (the ``TRAINERS`` registry's built-ins).

``mopa`` registers its trainer in :mod:`fusionbench.methods.mopa` (imported by
the methods package); SwinFusion's trainer lives in
:mod:`fusionbench.methods._swinfusion_train`, which the inference module
``swinfusion.py`` does not import (no import cycle).
"""
import fusionbench.methods  # noqa: F401  (registers the methods, and mopa's trainer)
import fusionbench.methods._swinfusion_train  # noqa: F401  (registers the SwinFusion trainer)
