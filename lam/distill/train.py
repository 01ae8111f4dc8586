"""The distillation loop: ``lam distill`` (stage "embed", "cloze" or "retrieve").

"embed" trains the memory so that two segments of a 508-token text, pooled by the token mean,
match the full-attention teacher's embedding of the whole text; "cloze" trains it on texts of
several segments so that the document vector retrieves a passage of its own text among those
of sibling documents from the same book (plus the 508-token fidelity term on the same pass);
"retrieve" trains it on real queries: windows of QMSum train meetings, pooled by segment IDF,
must be found by the teacher's embedding of the query and of its answer among the batch's
windows, those of the same meeting being the hard negatives (plus the fidelity term).

Fixed seeds, AdamW on the memory parameters only (so text of one segment stays exactly the
teacher's), cosine learning-rate decay, gradient clipping, a checkpoint every
``ckpt_every`` steps (``--resume`` continues from it), a JSON-lines log, a PNG of the loss
curve, and the 512-token fidelity (mean cosine to the full-attention teacher on held-out
windows) measured before and after. The result is saved as a normal LAM model folder.
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
    QueryWindow,
    continuation_ids,
    meeting_query_windows,
    random_span,
    sibling_windows,
    token_windows,
)
from lam.distill.objectives import (
    embedding_distillation_loss,
    idf_pooled_segments,
    info_nce,
    pooled_segments,
    teacher_layer_inputs,
    token_mean,
)
from lam.distill.target_cache import TargetCache
from lam.layers import masked_sum
from lam.model import LAMModel
from lam.persistence import load_model_files, load_state_into, resolve_model_dir, save_model_files
from lam.runner import segment_states
from lam.tokenization import TextSegmenter

STAGES = ("embed", "cloze", "retrieve")


@dataclass
class DistillConfig:
    stage: str = "embed"  # "embed" (two segments, 508 tokens), "cloze" or "retrieve" (long_segments segments)
    long_segments: int = 4  # "cloze", "retrieve": segments per training document
    passage_tokens: int = 48  # "cloze": length of the passage to retrieve
    group: int = 4  # "cloze", "retrieve": documents from one book or meeting (each other's hard negatives)
    embed_weight: float = 1.0  # "cloze", "retrieve": weight of the 508-token fidelity loss on the same pass
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
    """(student, full-attention teacher over 512 tokens, segmenter) from one model folder.

    Distillation trains the memory, so the student has it on even where the folder's config
    turns it off (the bundled model keeps its trained memory in the weights file, unread).
    """
    model_dir = resolve_model_dir(model_path)
    config, state, tokenizer = load_model_files(model_dir)
    config = LAMConfig.from_dict({**config.to_dict(), "memory": True})
    if not any(".memory." in name for name in state):
        raise ValueError(f"{model_dir} has no memory tensors to train (start from a model with a memory)")
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
) -> torch.Tensor:
    """Full-attention teacher embedding (unnormalised mean pool) of [CLS] body [SEP] texts."""

    def compute(todo: list[list[int]]) -> torch.Tensor:
        ids, mask = segmenter.frame(todo, device)
        states = teacher_layer_inputs(teacher, ids, mask)[-1]
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
) -> float:
    """Mean cosine between LAM (two segments + memory) and the teacher (full attention) on
    508-token texts, both pooled by the token mean."""
    student.eval()
    cos = []
    for i in range(0, len(windows), 8):
        batch = windows[i : i + 8]
        t_emb = _teacher_embedding(teacher, segmenter, batch, device, cache)
        s_emb = pooled_segments(student, _segments(batch, segmenter, device))
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
    cloze, retrieve = cfg.stage == "cloze", cfg.stage == "retrieve"
    grouped = cloze or retrieve
    if grouped and cfg.long_segments < 2:
        raise ValueError(f"{cfg.stage}: long_segments must be ≥ 2, not {cfg.long_segments}")
    if grouped and cfg.batch_size < cfg.group:
        raise ValueError(f"{cfg.stage}: batch_size {cfg.batch_size} must be ≥ group {cfg.group}")
    torch.manual_seed(cfg.seed)
    student, teacher, segmenter = build_pair(model_path, cfg.device)  # a bad model folder fails before any output
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
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
    heldout = list(islice(token_windows(segmenter, 2 * c.segment_body_len, "heldout", seed=1), cfg.heldout_windows))
    record = {
        "config": asdict(cfg),
        "fidelity_before": fidelity_512(student, teacher, segmenter, heldout, cfg.device, cache),
    }
    log_path = out / "log.jsonl"
    if log_path.exists():  # keep only the steps the checkpoint holds: a run killed after it logs them again
        kept = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] <= step]
        log_path.write_text("".join(line + "\n" for line in kept))
    log = open(log_path, "a")
    # "embed" sees 508 body tokens = two LAM segments of [CLS] 254 [SEP]
    n_tokens = (cfg.long_segments if grouped else 2) * c.segment_body_len
    contexts_per_batch = cfg.batch_size // cfg.group if grouped else cfg.batch_size
    if retrieve:  # a group: windows of one meeting about different queries
        batches = _batches(
            lambda s: meeting_query_windows(segmenter, n_tokens, cfg.group, seed=s),
            contexts_per_batch * cfg.group,
            cfg.seed,
        )
    elif cloze:  # a group: pages of one book, consecutive rows of a batch
        continuation = continuation_ids(segmenter)
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
        if retrieve:
            loss, parts = _retrieval_step(student, teacher, segmenter, windows, cfg, cache)
        elif not cloze:
            target = _teacher_embedding(teacher, segmenter, windows, cfg.device, cache)
            student_emb = pooled_segments(student, _segments(windows, segmenter, cfg.device))
            loss = embedding_distillation_loss(student_emb, target)
            parts = {}
        else:
            rng = random.Random(f"{cfg.seed}/{step}")  # per step, so a resumed run draws the same
            docs = windows  # a passage of each document's own text; not cached: every draw is new
            hidden = [random_span(d, cfg.passage_tokens, rng, continuation) for d in docs]
            target = _teacher_embedding(teacher, segmenter, hidden, cfg.device)
            running = pooled_segments(student, _segments(docs, segmenter, cfg.device), prefixes=True)
            recall = info_nce(running[-1], target)
            fidelity = _prefix_fidelity(teacher, segmenter, running[1], docs, cfg.device, cache)
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
    if cache is not None:
        record["target_cache"] = {"path": cfg.target_cache, "hits": cache.hits, "misses": cache.misses}
        cache.close()
    record["train_seconds"] = time.time() - started
    student.config.name = cfg.name or f"{c.name}+{cfg.stage}"
    save_model_files(student.cpu(), segmenter.tokenizer, out / "model")
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    plot_losses(out / "log.jsonl", out / "loss.png")
    return out


def _prefix_fidelity(
    teacher: LAMModel,
    segmenter: TextSegmenter,
    prefix_emb: torch.Tensor,
    docs: list[list[int]],
    device: str,
    cache: TargetCache | None,
) -> torch.Tensor:
    """The ``embed`` loss on a pass over longer documents: the student's token mean of their first
    two segments (``prefix_emb``) against the teacher's full-attention embedding of those 508 tokens."""
    prefix_len = 2 * segmenter.body_len
    return embedding_distillation_loss(
        prefix_emb, _teacher_embedding(teacher, segmenter, [d[:prefix_len] for d in docs], device, cache)
    )


def _retrieval_step(
    student: LAMModel,
    teacher: LAMModel,
    segmenter: TextSegmenter,
    windows: list[QueryWindow],
    cfg: DistillConfig,
    cache: TargetCache | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The "retrieve" loss on one batch of :class:`lam.distill.data.QueryWindow`: InfoNCE of the
    query and of the answer against the windows (segment-IDF pool) + the fidelity of the first
    two segments (token mean) to the teacher on the same 508 tokens."""
    docs = [w.ids for w in windows]
    segments = _segments(docs, segmenter, cfg.device)
    states = segment_states(student, segments)
    doc_emb = idf_pooled_segments(states, segments, student.config.vocab_size)
    limit = teacher.config.segment_len - 2  # the teacher's body positions
    targets = {}
    for field in ("query", "answer"):
        bodies = [ids[:limit] for ids in segmenter.body_ids_batch([getattr(w, field) for w in windows])]
        targets[field] = _teacher_embedding(teacher, segmenter, bodies, cfg.device, cache)
    query = info_nce(targets["query"], doc_emb)
    answer = info_nce(targets["answer"], doc_emb)
    fidelity = _prefix_fidelity(teacher, segmenter, token_mean(states[:2], segments[:2]), docs, cfg.device, cache)
    loss = query + answer + cfg.embed_weight * fidelity
    return loss, {
        "query": float(query.detach()),
        "answer": float(answer.detach()),
        "fidelity": float(fidelity.detach()),
    }


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
