"""Fixtures of the training tests: a small training pack (2 pairs per packed variant) written once."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_pack(tmp_path_factory, shared_dir):
    """A pack with the first 2 training pairs of mopa, mopa.mask_only and swinfusion.ct (``--max-pairs 2``)."""
    from fusionbench.train.pack import write_pack

    out = tmp_path_factory.mktemp("pack") / "small.fbpack"
    return write_pack(["mopa", "mopa.mask_only", "swinfusion.ct"], out, shared_dir / "data", max_pairs=2)
