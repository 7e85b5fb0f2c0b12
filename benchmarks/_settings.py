"""asv settings shared by the benchmark classes that time one long call per sample."""
from __future__ import annotations


class OneShot:
    """One call per sample, one sample, no warm-up rounds, one process (a fusion or a training step
    takes seconds: asv's defaults would repeat it for minutes).  Subclasses set ``timeout``."""

    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0
    processes = 1


class _SwitchedSchedule:
    """A deep method's 256² forward at torch's thread count under each setting of one module-level switch (an
    inference schedule): ``track_fraction_of_conv_peak`` is its GFLOP/s over the plain 3×3 64→64 convolution's,
    timed just before in the same process, the median of three interleaved rounds
    (:func:`fusionbench.profile.fraction_of_conv_peak`), so that an idle
    run says which setting is faster.  Subclasses set ``params`` (the schedules), ``param_names``,
    ``method_name``, and :meth:`_switch` / :meth:`_value`; the switch is restored after each benchmark.
    (Named with a leading underscore so that asv does not collect the base class itself.)"""

    timeout = 600
    processes = 1
    number = 1
    repeat = 1
    method_name = ""

    def _switch(self) -> tuple[object, str]:
        """``(owner, attribute)`` of the switch."""
        raise NotImplementedError

    def _value(self, schedule: str) -> object:
        """The switch's value for ``schedule``."""
        raise NotImplementedError

    def setup(self, schedule: str) -> None:
        from fusionbench.method_registry import create_method

        self.method = create_method(self.method_name)
        if self.method.unavailable_reason() is not None:
            raise NotImplementedError(self.method.unavailable_reason())
        self.method.instance  # network built and weights loaded outside the timing
        owner, name = self._switch()
        self._saved = getattr(owner, name)
        setattr(owner, name, self._value(schedule))

    def teardown(self, schedule: str) -> None:
        owner, name = self._switch()
        setattr(owner, name, self._saved)

    def track_fraction_of_conv_peak(self, schedule: str) -> float:
        from fusionbench import profile

        return float(profile.fraction_of_conv_peak(self.method, size=(256, 256)))

    track_fraction_of_conv_peak.unit = "fraction"
