"""Choose a weight interpolation θ(α) = (1 − α)·A + α·B between two trained models, on dev data only.

    python benchmarks/interpolation.py --a runs/cloze-210/model --b runs/polish-hi-330/model \\
        --name cloze-210~polish-hi-330

A is the recall-trained model (passkey), B the fidelity-polished one; ``lam merge`` writes each
θ(α) into ``runs/interpolation/<name>/<α>``. Each point is measured on dev data, never on the
evaluation sets of ``lam eval``:

* dev fidelity: mean cosine to the full-attention teacher on the distillation's validation
  windows (held-out documents, window seed 1, as ``summary.json`` of ``lam distill``; the
  ``lam eval`` fidelity draws other windows with seed 512);
* passkey, synthetic dev seed 1 (``lam.retrieval.tuning.DEV_SEED``), lengths 256…8192, and QMSum
  val (query, answer), pooled with the model's own redundancy gate, as ``redundancy_gate.py``.

Rule: the smallest α whose dev fidelity reaches ``--min-fidelity`` (B was trained away from
A's passkey, so the point nearest A keeps most of it); without one, the highest dev fidelity.
Dev fidelity costs seconds per point, dev retrieval minutes, so only the chosen α and
``--retrieval-alphas`` are measured on retrieval.

Writes results/distill/interpolation-<name>.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
from itertools import islice
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from redundancy_gate import DEV_LENGTHS, collect, dev_rating, score

from lam import LAM
from lam.distill.data import token_windows
from lam.distill.merge import interpolate_models
from lam.distill.train import build_pair, fidelity_512
from lam.evaluation.datasets import load_qmsum
from lam.evaluation.synthetic import synthetic_splits
from lam.retrieval.tuning import DEV_SEED

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "distill"


def dev_fidelity(model_dir: Path, n_windows: int) -> float:
    student, teacher, segmenter = build_pair(str(model_dir), "cpu")
    windows = list(islice(token_windows(segmenter, 2 * student.config.segment_body_len, "heldout", seed=1), n_windows))
    return fidelity_512(student, teacher, segmenter, windows, "cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="model folder at α = 0")
    parser.add_argument("--b", required=True, help="model folder at α = 1")
    parser.add_argument("--alphas", default="0,0.25,0.5,0.625,0.75,0.875,1")
    parser.add_argument("--name", required=True)
    parser.add_argument("--windows", type=int, default=64, help="dev fidelity windows")
    parser.add_argument(
        "--min-fidelity",
        type=float,
        default=0.973,
        help="dev floor; dev fidelity has run 0.003 above lam eval's (0.9740 vs 0.9705 for polish-hi-330)",
    )
    parser.add_argument("--retrieval-alphas", default="0,1", help="α measured on dev retrieval besides the chosen")
    args = parser.parse_args()
    alphas = sorted(float(a) for a in args.alphas.split(","))
    folder = ROOT / "runs" / "interpolation" / args.name
    rows = []
    for alpha in alphas:  # phase 1: dev fidelity along the line (seconds per point)
        model_dir = interpolate_models(args.a, args.b, alpha, folder / f"{alpha:g}", name=f"{args.name}@{alpha:g}")
        rows.append({"alpha": alpha, "dev_fidelity": dev_fidelity(model_dir, args.windows), "model": model_dir})
        print(f"α = {alpha:g}: dev fidelity {rows[-1]['dev_fidelity']:.4f}", flush=True)
    # B's training traded passkey for fidelity, so the smallest α that reaches the floor keeps most of A
    eligible = [r for r in rows if r["dev_fidelity"] >= args.min_fidelity]
    best = eligible[0] if eligible else max(rows, key=lambda r: r["dev_fidelity"])
    # phase 2: dev retrieval (minutes per point) for the chosen α and those asked for
    extra = {float(a) for a in args.retrieval_alphas.split(",") if a}
    query, answer = load_qmsum("query"), load_qmsum("answer")
    passkey_splits = synthetic_splits("passkey", DEV_LENGTHS, seed=DEV_SEED)
    for row in rows:
        if row is not best and row["alpha"] not in extra:
            continue
        lam = LAM(row["model"])
        tau, power = lam.model.config.redundancy_tau, lam.model.config.redundancy_power
        tag = f"interp-{args.name}-{row['alpha']:g}"
        passkey = collect(lam, tag, "passkey", [(s.name, s, [s]) for s in passkey_splits])
        qmsum = collect(lam, tag, "qmsum", [("qmsum", query, [query, answer])])
        per_length = score(passkey, tau, power, k=1)
        qm = score(qmsum, tau, power, k=10)
        row["passkey_dev_mean"] = float(np.mean(list(per_length.values())))
        row["passkey_dev"] = per_length
        row["qmsum_val_query"], row["qmsum_val_answer"] = qm["qmsum-query"], qm["qmsum-answer"]
        row["dev_rating"] = dev_rating(row)
        print(f"α = {row['alpha']:g}: passkey dev {row['passkey_dev_mean']:.1f}", flush=True)
    for row in rows:
        row["model"] = str(row["model"].relative_to(ROOT)) if row["model"].is_relative_to(ROOT) else str(row["model"])
    OUT.mkdir(parents=True, exist_ok=True)
    record = {
        "a": args.a,
        "b": args.b,
        "dev_seed": DEV_SEED,
        "min_fidelity": args.min_fidelity,
        "best_alpha": best["alpha"],
        "rows": rows,
    }
    (OUT / f"interpolation-{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"Weight interpolation (1 − α)·A + α·B on dev data, A = `{args.a}`, B = `{args.b}`",
        "",
        "| α | dev fidelity | passkey dev (mean) | "
        + " | ".join(str(L) for L in DEV_LENGTHS)
        + " | QMSum val query | answer | dev rating |",
        "|---:|---:|---:|" + "---:|" * len(DEV_LENGTHS) + "---:|---:|---:|",
    ]
    for r in rows:
        mark = "**" if r is best else ""
        if "passkey_dev" in r:
            cells = " | ".join(f"{v:.0f}" for v in r["passkey_dev"].values())
            rest = (
                f"{r['passkey_dev_mean']:.1f} | {cells} | {r['qmsum_val_query']:.2f} | "
                f"{r['qmsum_val_answer']:.2f} | {r['dev_rating']:.2f}"
            )
        else:
            rest = " | ".join(["—"] * (len(DEV_LENGTHS) + 4))
        lines.append(f"| {mark}{r['alpha']:g}{mark} | {r['dev_fidelity']:.4f} | {rest} |")
    lines += [
        "",
        f"Chosen: α = {best['alpha']:g}, the smallest α with dev fidelity ≥ {args.min_fidelity}"
        + ("." if eligible else " (none reaches it: the highest dev fidelity)."),
    ]
    (OUT / f"interpolation-{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig, ax1 = plt.subplots(figsize=(6, 4))
    xs = [r["alpha"] for r in rows]
    ax1.plot(xs, [r["dev_fidelity"] for r in rows], "o-", color="tab:blue", label="dev fidelity")
    ax1.axhline(args.min_fidelity, color="tab:blue", ls=":", lw=1)
    ax1.set_xlabel("α (0 = A, 1 = B)")
    ax1.set_ylabel("dev fidelity", color="tab:blue")
    measured = [r for r in rows if "passkey_dev" in r]
    ax2 = ax1.twinx()
    ax2.plot([r["alpha"] for r in measured], [r["passkey_dev_mean"] for r in measured], "s", color="tab:red")
    ax2.set_ylabel("passkey dev (nDCG@1, mean of 6 lengths)", color="tab:red")
    ax1.set_title(f"interpolation {args.name}")
    fig.tight_layout()
    fig.savefig(OUT / f"interpolation-{args.name}.png", dpi=120)


if __name__ == "__main__":
    main()
