"""Weight interpolation between two trained LAM models (WiSE-FT, Wortsman et al. 2022).

Two runs that start from the same model and train different objectives (here: "cloze" for
long-text recall, "embed" for 512-token fidelity) sit in one linearly connected basin, so a
point on the segment between them often keeps most of what each end learned:

    θ(α) = (1 − α) · θ_a + α · θ_b,    α ∈ [0, 1]

Only tensors the two models actually differ in change; both must share one architecture
(every config field but ``name``). Costs one pass over the weights, no data, no training.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lam.errors import WeightsError
from lam.model import LAMModel
from lam.persistence import load_model_files, load_state_into, resolve_model_dir, save_model_files


def interpolate_states(
    state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """(1 − alpha) · a + alpha · b for float tensors; other tensors must be equal and are kept."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if set(state_a) != set(state_b):
        only = sorted(set(state_a) ^ set(state_b))
        raise WeightsError(f"the two models hold different tensors: {only[:8]}")
    merged = {}
    for key, a in state_a.items():
        b = state_b[key]
        if a.shape != b.shape:
            raise WeightsError(f"{key}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        if a.is_floating_point():
            merged[key] = torch.lerp(a.float(), b.float(), alpha)
        elif torch.equal(a, b):
            merged[key] = a
        else:
            raise WeightsError(f"{key}: integer tensors differ and cannot be interpolated")
    return merged


def interpolate_models(
    model_a: str | Path, model_b: str | Path, alpha: float, out: str | Path, name: str | None = None
) -> Path:
    """Write the model θ(alpha) between two model folders into ``out`` (fp16, with checksums)."""
    dir_a, dir_b = resolve_model_dir(model_a), resolve_model_dir(model_b)
    config_a, state_a, tokenizer = load_model_files(dir_a)
    config_b, state_b, _ = load_model_files(dir_b)
    shape_a = {k: v for k, v in config_a.to_dict().items() if k != "name"}
    shape_b = {k: v for k, v in config_b.to_dict().items() if k != "name"}
    if shape_a != shape_b:
        diff = sorted(k for k in shape_a if shape_a[k] != shape_b.get(k))
        raise WeightsError(f"{dir_a} and {dir_b} differ in config fields {diff}")
    config_a.name = name or f"{config_a.name}~{config_b.name}@{alpha:g}"
    model = LAMModel(config_a)
    load_state_into(model, interpolate_states(state_a, state_b, alpha), dir_a)
    return save_model_files(model, tokenizer, out)
