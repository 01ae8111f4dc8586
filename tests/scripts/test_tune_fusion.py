"""The fusion tuning's choice: the L-Eval kinds count as one group in the mean, each with a floor."""

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "tune_fusion.py"
_spec = importlib.util.spec_from_file_location("tune_fusion", _PATH)
tune_fusion = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tune_fusion)


def test_the_leval_kinds_count_as_one_group_in_the_mean():
    groups = {"qmsum-query": 60.0, "passkey": 100.0, "leval/a": 90.0, "leval/b": 70.0, "leval/c": 80.0}
    assert tune_fusion.headline_mean(groups) == pytest.approx((60 + 100 + 80) / 3)
    assert tune_fusion.headline_mean({"passkey": 100.0, "needle": 90.0}) == pytest.approx(95.0)


def test_a_kind_under_its_floor_rules_a_row_out():
    rows = [  # best mean first, as grid_search returns them
        {"mean": 90.0, "groups": {"passkey": 100.0, "leval/earnings": 94.0}},
        {"mean": 89.0, "groups": {"passkey": 100.0, "leval/earnings": 94.8}},
    ]
    floors = {"passkey": 100.0, "leval/earnings": 94.73}
    assert tune_fusion.choose(rows, floors) == (rows[1], True)
    assert tune_fusion.choose(rows, {**floors, "leval/earnings": 95.0}) == (rows[0], False)
