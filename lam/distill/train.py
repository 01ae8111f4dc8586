"""The distillation loop: ``lam distill`` (stage "transfer", "embed", "chain", "long" or "cloze").

Fixed seeds, AdamW on the memory parameters only (so text of one segment stays exactly the
teacher's), cosine learning-rate decay, gradient clipping, a checkpoint every
``ckpt_every`` steps (``--resume`` continues from it), a JSON-lines log, a PNG of the loss
curve, and the 512-token fidelity (mean cosine to the full-attention teacher on held-out
windows) measured before and after, under the plain mean and under segment IDF (the shipped
pool). The result is saved as a normal LAM model folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lam.config import LAMConfig
from lam.distill.data import (
    continuation_ids,
    hide_passage,
    pair_sentences,
    random_span,
    sibling_windows,
    token_windows,
)
from lam.distill.objectives import (
    attention_transfer_loss,
    embedding_distillation_loss,
    passage_recall_loss,
    pooled_segments,
    segment_means,
    teacher_layer_inputs,
)
from lam.distill.target_cache import TargetCache
from lam.layers import masked_sum
from lam.model import LAMModel
from lam.persistence import load_model_files, load_state_into, resolve_model_dir, save_model_files
from lam.tokenization import TextSegmenter

STAGES = ("transfer", "embed", "chain", "long", "cloze")
MULTI_SEGMENT_STAGES = ("chain", "long", "cloze")
RECALL_STAGES = ("long", "cloze")  # a passage-recall loss over groups of documents
POOLS = ("mean", "idf")
POOL_STAGES = ("embed", "cloze")  # the stages whose loss can pool the student as LAM ships


@dataclass
class DistillConfig:
    stage: str = "transfer"  # "transfer" (stage 1), "embed" (stage 2); "chain", "long", "cloze" (beyond 512)
    long_segments: int = 4  # "long" / "chain" / "cloze": segments per training document
    passage_tokens: int = 48  # "long": longest passage hidden in a document; "cloze": passage length
    group: int = 4  # "long": documents sharing one context; "cloze": documents from one book
    embed_weight: float = 1.0  # "long" / "cloze": weight of the 508-token fidelity loss on the same pass
    pool: str = "mean"  # "embed" / "cloze": the student's pool in the loss, "mean" or "idf" (as shipped)
    steps: int = 300
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    out: str = "runs/distill"
    ckpt_every: int = 50
    heldout_windows: int = 32
    target_cache: str | None = "runs/teacher-targets.sqlite"  # fp16 teacher targets; None: recompute
    name: str | None = None  # the trained model's name (default: "<start model>+<stage>")


def build_pair(model_path: str | None, device: str) -> tuple[LAMModel, LAMModel, TextSegmenter]:
    """(student, full-attention teacher over 512 tokens, segmenter) from one model folder."""
    model_dir = resolve_model_dir(model_path)
    config, state, tokenizer = load_model_files(model_dir)
    student = LAMModel(config)
    load_state_into(student, state, model_dir)
    teacher_config = LAMConfig.from_dict({**config.to_dict(), "segment_len": 512, "memory": False})
    teacher = LAMModel(teacher_config)
    load_state_into(teacher, state, model_dir)
    for p in teacher.parameters():
        p.requires_grad_(False)
    segmenter = TextSegmenter(
        tokenizer, config.segment_len, config.cls_token_id, config.sep_token_id, config.pad_token_id
    )
    return student.to(device), teacher.to(device).eval(), segmenter


def _segments(
    windows: list[list[int]], segmenter: TextSegmenter, device: str
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Equal-length windows → aligned LAM segment batches ([CLS] W−2 ids [SEP] each)."""
    body = segmenter.body_len
    return [segmenter.frame([w[s : s + body] for w in windows], device) for s in range(0, len(windows[0]), body)]


@torch.no_grad()
def _teacher_embedding(
    teacher: LAMModel,
    segmenter: TextSegmenter,
    bodies: list[list[int]],
    device: str,
    cache: TargetCache | None = None,
    tail: bool = False,
) -> torch.Tensor:
    """Full-attention teacher embedding (unnormalised mean pool) of [CLS] body [SEP] texts.

    ``tail=True`` pools only the second segment of each two-segment body: the teacher's view of
    that segment with the one before it in context (the "chain" target).
    """
    body = segmenter.body_len

    def compute(todo: list[list[int]]) -> torch.Tensor:
        ids, mask = segmenter.frame(todo, device)
        states = teacher_layer_inputs(teacher, ids, mask)[-1]
        if tail:
            states, mask = states[:, 1 + body : 1 + 2 * body], mask[:, 1 + body : 1 + 2 * body]
        total, count = masked_sum(states, mask)
        return total / count.unsqueeze(-1)

    return compute(bodies) if cache is None else cache.get_or_compute(bodies, compute).to(device)


def teacher_fingerprint(teacher: LAMModel) -> str:
    """sha256 over the teacher's tensors and shape: which teacher a cached target came from."""
    digest = hashlib.sha256(json.dumps(teacher.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def fidelity_512(
    student: LAMModel,
    teacher: LAMModel,
    segmenter: TextSegmenter,
    windows: list[list[int]],
    device: str,
    cache: TargetCache | None = None,
    token_idf: bool = False,
) -> float:
    """Mean cosine between LAM (two segments + memory) and the teacher (full attention) on
    508-token texts; LAM pooled by the plain mean, or by segment IDF with ``token_idf``."""
    student.eval()
    cos = []
    for i in range(0, len(windows), 8):
        batch = windows[i : i + 8]
        t_emb = _teacher_embedding(teacher, segmenter, batch, device, cache)
        s_emb = pooled_segments(
            student,
            _segments(batch, segmenter, device),
            token_idf=token_idf,
        )
        cos += torch.nn.functional.cosine_similarity(s_emb, t_emb, dim=-1).tolist()
    return sum(cos) / len(cos)


def _batches(groups: Callable[[int], Iterator[list[list[int]]]], size: int, seed: int):
    """Endless batches of ``size`` windows from ``groups(seed + epoch)``, a group never split
    across batches (a group's windows stay consecutive rows)."""
    epoch = 0
    while True:
        batch = []
        for group in groups(seed + epoch):
            batch += group
            if len(batch) == size:
                yield batch
                batch = []
        epoch += 1


def train(cfg: DistillConfig, model_path: str | None = None, resume: bool = False, progress: bool = True) -> Path:
    if cfg.stage not in STAGES:
        raise ValueError(f"unknown stage {cfg.stage!r}")
    if cfg.stage in MULTI_SEGMENT_STAGES and cfg.long_segments < 2:
        raise ValueError(f"{cfg.stage}: long_segments must be ≥ 2, not {cfg.long_segments}")
    if cfg.stage in RECALL_STAGES and cfg.batch_size < cfg.group:
        raise ValueError(f"{cfg.stage}: batch_size {cfg.batch_size} must be ≥ group {cfg.group}")
    if cfg.pool not in POOLS:
        raise ValueError(f"unknown pool {cfg.pool!r}: one of {POOLS}")
    if cfg.pool != "mean" and cfg.stage not in POOL_STAGES:
        raise ValueError(f"pool {cfg.pool!r} is for the {' and '.join(POOL_STAGES)} stages only, not {cfg.stage!r}")
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    student, teacher, segmenter = build_pair(model_path, cfg.device)
    c = student.config
    if c.segment_len * 2 > 512:
        raise ValueError("distillation needs two segments inside the teacher's 512 positions (segment_len ≤ 256)")
    params = [p for n, p in student.named_parameters() if ".memory." in n]
    for n, p in student.named_parameters():
        p.requires_grad_(".memory." in n)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))
    )
    step = 0
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        saved = torch.load(ckpt, map_location=cfg.device)
        student.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        step = saved["step"]
    fingerprint = teacher_fingerprint(teacher)
    cache = TargetCache(cfg.target_cache, fingerprint) if cfg.target_cache else None
    tail_cache = (
        TargetCache(cfg.target_cache, fingerprint + "/tail") if cache is not None and cfg.stage == "chain" else None
    )
    heldout = list(islice(token_windows(segmenter, 2 * c.segment_body_len, "heldout", seed=1), cfg.heldout_windows))
    record = {
        "config": asdict(cfg),
        "fidelity_before": fidelity_512(student, teacher, segmenter, heldout, cfg.device, cache),
        "fidelity_idf_before": fidelity_512(student, teacher, segmenter, heldout, cfg.device, cache, True),
    }
    log_path = out / "log.jsonl"
    if log_path.exists():  # keep only the steps the checkpoint holds: a run killed after it logs them again
        kept = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] <= step]
        log_path.write_text("".join(line + "\n" for line in kept))
    log = open(log_path, "a")
    # stage 1 sees [CLS] 510 [SEP] = 512 teacher positions, split 256 | 256;
    # stage 2 sees 508 body tokens = two LAM segments of [CLS] 254 [SEP].
    n_segments = cfg.long_segments if cfg.stage in MULTI_SEGMENT_STAGES else 2
    n_tokens = 510 if cfg.stage == "transfer" else n_segments * c.segment_body_len
    contexts_per_batch = cfg.batch_size // cfg.group if cfg.stage in RECALL_STAGES else cfg.batch_size
    if cfg.stage in RECALL_STAGES:
        continuation = continuation_ids(segmenter)
    if cfg.stage == "long":
        passages = [p[: cfg.passage_tokens] for p in segmenter.body_ids_batch(pair_sentences(cfg.seed))]
    if cfg.stage == "cloze":  # a group: pages of one book, consecutive rows of a batch
        batches = _batches(
            lambda s: sibling_windows(segmenter, n_tokens, cfg.group, "train", seed=s),
            contexts_per_batch * cfg.group,
            cfg.seed,
        )
    else:  # a group: one window
        batches = _batches(
            lambda s: ([w] for w in token_windows(segmenter, n_tokens, "train", seed=s)), contexts_per_batch, cfg.seed
        )
    for _ in range(step):  # resume at the same data position
        next(batches)
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc=f"distill/{cfg.stage}")
    started = time.time()
    student.train()
    while step < cfg.steps:
        windows = next(batches)
        if cfg.stage == "transfer":
            ids, mask = segmenter.frame(windows, cfg.device)
            inputs = teacher_layer_inputs(teacher, ids, mask)[:-1]
            loss, per_layer = attention_transfer_loss(student, inputs, mask, c.segment_len)
            parts = {f"layer {i}": v for i, v in enumerate(per_layer)}
        elif cfg.stage == "embed":
            target = _teacher_embedding(teacher, segmenter, windows, cfg.device, cache)
            segments = _segments(windows, segmenter, cfg.device)
            student_emb = pooled_segments(
                student,
                segments,
                token_idf=cfg.pool == "idf",
            )
            loss = embedding_distillation_loss(student_emb, target)
            parts = {}
        elif cfg.stage == "chain":
            body = c.segment_body_len
            means = segment_means(student, _segments(windows, segmenter, cfg.device))
            losses = []
            for s in range(1, len(means)):
                pairs = [w[(s - 1) * body : (s + 1) * body] for w in windows]
                target = _teacher_embedding(teacher, segmenter, pairs, cfg.device, tail_cache, tail=True)
                losses.append(embedding_distillation_loss(means[s], target))
            loss = torch.stack(losses).mean()
            parts = {f"segment {s}": float(v.detach()) for s, v in enumerate(losses, start=1)}
        else:  # "long" / "cloze"
            rng = random.Random(f"{cfg.seed}/{step}")  # per step, so a resumed run draws the same
            if cfg.stage == "long":
                hidden = [rng.choice(passages) for _ in range(len(windows) * cfg.group)]
                docs = [hide_passage(windows[i // cfg.group], p, rng, continuation) for i, p in enumerate(hidden)]
                target = _teacher_embedding(teacher, segmenter, hidden, cfg.device, cache)
            else:  # a passage of each document's own text; not cached: every draw is new
                docs = windows
                hidden = [random_span(d, cfg.passage_tokens, rng, continuation) for d in docs]
                target = _teacher_embedding(teacher, segmenter, hidden, cfg.device)
            # Under passage IDF with P ≥ 508 (or idf_min_text_tokens ≥ 508) the 508-token prefix keeps
            # the plain mean, so its fidelity loss is on the teacher's pool; only the whole text is re-weighted.
            running = pooled_segments(
                student,
                _segments(docs, segmenter, cfg.device),
                prefixes=True,
                token_idf=cfg.pool == "idf",
            )
            recall = passage_recall_loss(running[-1], target)
            prefix_len = 2 * c.segment_body_len
            fidelity = embedding_distillation_loss(
                running[1], _teacher_embedding(teacher, segmenter, [d[:prefix_len] for d in docs], cfg.device, cache)
            )
            loss = recall + cfg.embed_weight * fidelity
            parts = {"recall": float(recall.detach()), "fidelity": float(fidelity.detach())}
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        entry = {
            "step": step,
            "loss": float(loss.detach()),
            "parts": parts,
            "lr": sched.get_last_lr()[0],
            "seconds": time.time() - started,
        }
        log.write(json.dumps(entry) + "\n")
        log.flush()
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            torch.save(
                {
                    "model": student.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "step": step,
                },
                ckpt,
            )
    bar.close()
    log.close()
    student.eval()
    record["fidelity_after"] = fidelity_512(student, teacher, segmenter, heldout, cfg.device, cache)
    record["fidelity_idf_after"] = fidelity_512(student, teacher, segmenter, heldout, cfg.device, cache, True)
    if cache is not None:
        record["target_cache"] = {"path": cfg.target_cache, "hits": cache.hits, "misses": cache.misses}
        cache.close()
    if tail_cache is not None:
        tail_cache.close()
    record["train_seconds"] = time.time() - started
    student.config.name = cfg.name or f"{c.name}+{cfg.stage}"
    save_model_files(student.cpu(), segmenter.tokenizer, out / "model")
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    plot_losses(out / "log.jsonl", out / "loss.png")
    return out


def plot_losses(log_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [json.loads(line) for line in open(log_path)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([e["step"] for e in entries], [e["loss"] for e in entries], label="total")
    for part in entries[0].get("parts", {}) if entries else ():
        ax.plot([e["step"] for e in entries], [e["parts"][part] for e in entries], lw=0.7, label=part)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
