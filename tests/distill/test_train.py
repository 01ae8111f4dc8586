"""`lam distill` end to end on the real model: one step per stage, outputs, and resume."""

import json

import pytest

from lam import LAM
from lam.distill.train import DistillConfig, train
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "longdocs").exists(), reason="needs ../shared/data")


@pytest.mark.parametrize("stage", ["embed", "long"])
def test_one_step_writes_a_loadable_model_and_resumes(tmp_path, stage):
    cfg = DistillConfig(stage=stage, steps=1, batch_size=2, heldout_windows=2, out=str(tmp_path), long_segments=2)
    out = train(cfg, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert 0.5 < summary["fidelity_before"] <= 1 and 0.5 < summary["fidelity_after"] <= 1
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    trained = LAM(out / "model")
    assert trained.config.name.endswith(stage)
    assert any(float(layer.attention.memory.read_gate.detach().abs().max()) > 0 for layer in trained.model.layers)
    cfg.steps = 2
    train(cfg, resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]  # resumed at step 1, did not start over
