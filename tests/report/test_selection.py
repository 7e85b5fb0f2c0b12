"""Which methods a report shows: the paper's default, --methods/--order/--highlight/--exclude-variants, names."""
from __future__ import annotations

from fusionbench.report.selection import PAPER_METHODS, select, unique_display_names

RUN = ["average", "cnn", "cnp", "dtnp", "dwt", "dwt.vifb", "laplacian_pyramid", "laplacian_pyramid.mertens", "legff",
       "legff.ivf", "matr", "mdl", "mdl.fast", "mlepf", "mopa", "mopa.attention_only", "mopa.contrast_only",
       "mopa.decouple_only", "mopa.mask_only", "sdnet", "swinfusion", "swinfusion.ct", "u2fusion"]


def test_default_is_the_papers_ten_in_its_order() -> None:
    sel = select(RUN)
    assert sel.paper_default and sel.main == list(PAPER_METHODS)
    assert sel.main[0] == "legff" and sel.main[-1] == "mopa" and sel.highlight == "mopa"
    assert sel.ablations == ["mopa.mask_only", "mopa.attention_only", "mopa.contrast_only", "mopa.decouple_only",
                             "mopa"]
    assert "mdl.fast" in sel.others and "average" in sel.others and "mopa.mask_only" not in sel.others
    assert "swinfusion.ct" not in sel.others and "legff.ivf" not in sel.others  # they stand in per task


def test_task_presets_stand_in_per_dataset() -> None:
    sel = select(RUN)
    shown, standin = sel.for_dataset(RUN, "MRI-CT")
    assert "swinfusion.ct" in shown and "swinfusion" not in shown and standin == {"swinfusion.ct": "swinfusion"}
    shown, standin = sel.for_dataset([m for m in RUN if m != "swinfusion"], "IR-VIS")
    assert "legff.ivf" in shown and "legff" not in shown and "swinfusion" not in shown
    assert sel.for_dataset(RUN, "MRI-PET")[0] == list(PAPER_METHODS)


def test_patterns_order_highlight_and_variants() -> None:
    sel = select(RUN, methods="mdl*,dwt*")
    assert sel.main == ["mdl", "mdl.fast", "dwt", "dwt.vifb"] and sel.highlight is None
    assert select(RUN, methods="mdl*,dwt*", exclude_variants=True).main == ["mdl", "dwt"]
    sel = select(RUN, order="mopa,dwt,average", highlight="dwt")
    assert sel.main == ["mopa", "dwt", "average"] and sel.highlight == "dwt"
    assert "nope" in select(RUN, order="dwt,nope").note
    plain = select(["average", "dwt", "dwt.vifb", "maximum"])
    assert plain.main == ["average", "dwt", "dwt.vifb", "maximum"] and not plain.paper_default
    assert select(["average", "dwt", "dwt.vifb"], exclude_variants=True).main == ["average", "dwt"]


def test_display_names_are_unique() -> None:
    names = unique_display_names(["swinfusion", "swinfusion.ct", "mdl", "mdl.fast", "x", "y"],
                                 {"swinfusion": "SwinFusion", "swinfusion.ct": "SwinFusion", "mdl": "MDL",
                                  "mdl.fast": "MDL", "x": "Same", "y": "Same"})
    assert names["swinfusion"] == "SwinFusion" and names["swinfusion.ct"] == "SwinFusion (ct)"
    assert names["mdl.fast"] == "MDL (fast)"
    assert len(set(names.values())) == len(names)


def test_a_method_and_its_task_preset_both_in_the_main_tables_are_shown_once() -> None:
    """Session 37's audit: without ``mopa`` the main tables hold every method of the run, so ``legff`` and
    ``legff.ivf`` both; on IR-VIS data the preset stood in for ``legff`` and was listed again in its own place,
    and the report failed on the repeated row."""
    run = ["average", "legff", "legff.ivf", "swinfusion", "swinfusion.ct"]
    sel = select(run)
    assert sel.main == run
    assert sel.for_dataset(["average", "legff.ivf"], "IR-VIS") == (["average", "legff.ivf"], {"legff.ivf": "legff"})
    # scores of both (legff run before the folder was declared IR-VIS): the preset, once, in legff's place
    assert sel.for_dataset(["legff", "legff.ivf"], "IR-VIS") == (["legff.ivf"], {"legff.ivf": "legff"})
    assert sel.for_dataset(run, "MRI-CT") == (["average", "legff", "legff.ivf", "swinfusion.ct"],
                                              {"swinfusion.ct": "swinfusion"})
