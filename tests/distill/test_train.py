"""`lam distill` end to end on the real model: one step per stage, outputs, and resume."""

import json

import pytest
import torch

from lam import LAM
from lam.distill.train import DistillConfig, build_pair, train
from tests.conftest import SHARED_DATA, make_tiny_lam, shipped_weights

needs_data = pytest.mark.skipif(
    not (SHARED_DATA / "longdocs").exists() or not (SHARED_DATA / "qmsum").exists(), reason="needs ../shared/data"
)


def test_the_student_reads_the_memory_its_folder_leaves_off(tmp_path):
    """Distillation trains the memory: a folder whose config turns it off (the bundled one) gives a
    student with it on, its trained tensors loaded; a folder with no memory tensors is refused."""
    student, teacher, _ = build_pair(None, "cpu")
    assert not LAM().config.memory and student.config.memory and not teacher.config.memory
    trained = shipped_weights(memory=True).model.state_dict()
    for name, tensor in student.state_dict().items():
        assert torch.equal(tensor, trained[name]), name
    make_tiny_lam(memory=False).save_pretrained(tmp_path / "no-memory")
    with pytest.raises(ValueError, match="no memory tensors"):
        build_pair(str(tmp_path / "no-memory"), "cpu")


@needs_data
@pytest.mark.parametrize("stage", ["embed", "cloze", "retrieve"])
def test_one_step_writes_a_loadable_model_and_resumes(tmp_path, stage):
    cfg = DistillConfig(
        stage=stage,
        steps=1,
        batch_size=2,
        heldout_windows=2,
        out=str(tmp_path),
        long_segments=2,
        group=2,
        target_cache=str(tmp_path / "targets.sqlite"),
    )
    out = train(cfg, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert 0.5 < summary["fidelity_before"] <= 1 and 0.5 < summary["fidelity_after"] <= 1
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    trained = LAM(out / "model")
    assert trained.config.name.endswith(stage)
    assert any(float(layer.attention.memory.read_gate.detach().abs().max()) > 0 for layer in trained.model.layers)
    assert summary["target_cache"]["misses"] > 0
    with open(out / "log.jsonl", "a") as log:  # a run killed after its checkpoint had logged one more step
        log.write(json.dumps({"step": 2, "loss": 0.0}) + "\n")
    cfg.steps = 2
    train(cfg, resume=True, progress=False)
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["target_cache"]["hits"] >= 2  # the held-out targets came from disk
    entries = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in entries] == [1, 2]  # resumed at step 1, did not start over, no step twice
    parts = {"embed": set(), "cloze": {"recall", "fidelity"}, "retrieve": {"query", "answer", "fidelity"}}[stage]
    assert set(entries[0]["parts"]) == parts  # the retrieval losses and the fidelity term on the same pass
    assert abs(entries[0]["loss"] - sum(entries[0]["parts"].values())) < 1e-4 or not parts


@needs_data
def test_bad_stage_settings_are_refused(tmp_path):
    cfg = DistillConfig(stage="cloze", steps=1, batch_size=2, group=4, out=str(tmp_path), target_cache=None)
    with pytest.raises(ValueError, match="group"):
        train(cfg, progress=False)
    cfg = DistillConfig(stage="cloze", long_segments=1, out=str(tmp_path), target_cache=None)
    with pytest.raises(ValueError, match="long_segments"):
        train(cfg, progress=False)
    with pytest.raises(ValueError, match="unknown stage"):
        train(DistillConfig(stage="long", out=str(tmp_path), target_cache=None), progress=False)
