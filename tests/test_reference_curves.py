"""Loss curves recorded before the speed work (tests/data/reference_curves.json, made by the
commit 'README: compare, report, sweeps' code, on an Intel machine) must come out the same to
1e-12 relative in float64: optimizations may change summation order, never the numbers that
matter.

Why 1e-12 holds on another CPU: OpenBLAS picks other kernels there (Zen instead of Haswell),
which changes the last bits of a product (about 1e-16 relative); these cases are small,
well-conditioned runs whose curves carry such differences without amplifying them, and they
passed to 1e-12 on the AMD EPYC machine too. A chaotic run (a diverging learning rate) would
not, and none is recorded here: lessons.md states those as ranges over seeds instead."""

import json

import numpy as np
import pytest

from conftest import ROOT
from nntrain import load_config, train

REFERENCE = json.loads((ROOT / "tests" / "data" / "reference_curves.json").read_text())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_loss_curve_unchanged(tmp_path, name):
    case = REFERENCE[name]
    run = train(load_config(ROOT / case["config"], overrides=case["overrides"]), out=tmp_path / "r")
    for key in ("loss", "val_loss"):
        expected = np.array(case[key], dtype=float)
        got = np.array([row.get(key) for row in run.history], dtype=float)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, equal_nan=True)
