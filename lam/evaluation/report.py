"""A run record → JSON file, markdown table, PNG plots of score against context length."""

from __future__ import annotations

import json
from pathlib import Path

STS_COLUMNS = [
    ("stsb-test", "STS-B test"),
    ("stsb-dev", "STS-B dev"),
    ("sickr-test", "SICK-R test"),
    ("sts12", "STS12"),
    ("sts13", "STS13"),
    ("sts14", "STS14"),
    ("sts15", "STS15"),
]


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def markdown_table(record: dict) -> str:
    rows = []
    header = ["encoder"]
    results = record["results"]
    have_sts = any("sts" in r for r in results.values())
    have_fidelity = any("fidelity" in r for r in results.values())
    have_long = any("passkey" in r for r in results.values())
    have_qmsum = any("qmsum" in r for r in results.values())
    have_genres = any("genres" in r for r in results.values())
    if have_sts:
        header += [label for key, label in STS_COLUMNS if any(key in r.get("sts", {}) for r in results.values())]
    if have_fidelity:
        header += ["512-token fidelity"]
    if have_long:
        header += ["Passkey nDCG@1", "Needle nDCG@1"]
    if have_qmsum:
        header += ["QMSum query nDCG@10", "QMSum answer nDCG@10"]
    if have_genres:
        header += ["genres mean nDCG@10"]
    for name, r in results.items():
        row = [name]
        if have_sts:
            row += [_fmt(r.get("sts", {}).get(key)) for key, label in STS_COLUMNS if label in header]
        if have_fidelity:
            fid = r.get("fidelity", {}).get("mean_cosine")
            row += ["—" if fid is None else f"{fid:.4f}"]
        if have_long:
            row += [_fmt(r.get(t, {}).get("mean_ndcg_at_1")) for t in ("passkey", "needle")]
        if have_qmsum:
            row += [_fmt(r.get("qmsum", {}).get(v, {}).get("ndcg_at_10")) for v in ("query", "answer")]
        if have_genres:
            row += [_fmt(r.get("genres", {}).get("mean_ndcg_at_10"))]
        rows.append(row)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    run = record["run"]
    if have_fidelity:
        n = next(r["fidelity"]["texts"] for r in results.values() if "fidelity" in r)
        lines += [
            "",
            f"512-token fidelity: mean cosine to the teacher with full 512-token attention on {n} held-out "
            "510-token passages (lam.evaluation.datasets.load_fidelity_texts).",
        ]
    if have_long:
        lines += [
            "",
            f"Passkey / needle: mean over lengths {run['lengths']}, {run['n_docs']} documents and "
            f"{min(50, run['n_docs'])} queries per length, seed {run['seed']}.",
        ]
        for task in ("passkey", "needle"):
            if not any(task in r for r in results.values()):
                continue  # e.g. needle has no sets at the extra passkey lengths
            lines += [
                "",
                f"| {task} nDCG@1 | " + " | ".join(str(L) for L in run["lengths"]) + " |",
                "|---|" + "---:|" * len(run["lengths"]),
            ]
            for name, r in results.items():
                if task in r:
                    per = r[task]["per_length"]
                    cells = [f"{per[str(L)]['ndcg_at_1']:.0f}" if str(L) in per else "–" for L in run["lengths"]]
                    lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if have_genres:
        lines += ["", *genre_table(results)]
    lines += [
        "",
        f"Machine: {run['machine']['cpu']} ({run['machine']['threads']} threads), torch "
        f"{run['machine']['torch']}; commit {str(run['git_commit'])[:10]}; {run['seconds']:.0f} s; "
        f"{run['date']}.",
    ]
    return "\n".join(lines) + "\n"


def genre_table(results: dict) -> list[str]:
    """One row per kind of long document, one column per encoder (nDCG@10, the mean of the
    genre's query variants), the mean over genres last; then the splits with their query counts."""
    names = [n for n, r in results.items() if "genres" in r]
    first = results[names[0]]["genres"]
    lines = [
        "Long documents of many kinds (nDCG@10; a genre's score is the mean of its query variants; "
        "L-Eval's 176 distinct documents are one pooled corpus, QMSum val's 35 meetings another):",
        "",
        "| genre | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for genre in first["per_genre"]:
        cells = [_fmt(results[n]["genres"]["per_genre"].get(genre)) for n in names]
        lines.append(f"| {genre} | " + " | ".join(cells) + " |")
    means = [f"**{results[n]['genres']['mean_ndcg_at_10']:.2f}**" for n in names]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    lines += ["", "| split | queries | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for key, scores in first["per_split"].items():
        cells = [_fmt(results[n]["genres"]["per_split"].get(key, {}).get("ndcg_at_10")) for n in names]
        lines.append(f"| {key} | {scores['queries']} | " + " | ".join(cells) + " |")
    return lines


def plot_longembed(record: dict, path: Path) -> Path | None:
    results = {n: r for n, r in record["results"].items() if "passkey" in r or "needle" in r}
    if not results:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, task in zip(axes, ("passkey", "needle")):
        for name, r in results.items():
            if task in r:
                per = r[task]["per_length"]
                lengths = sorted(int(L) for L in per)
                ax.plot(lengths, [per[str(L)]["ndcg_at_1"] for L in lengths], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{task} (nDCG@1 per context length)")
        ax.set_xlabel("context length (tokens)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("nDCG@1 × 100")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(record: dict, out_dir: str | Path, stem: str = "eval") -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md"}
    paths["json"].write_text(json.dumps(record, indent=2) + "\n")
    paths["markdown"].write_text(markdown_table(record))
    png = plot_longembed(record, out / f"{stem}-longembed.png")
    if png:
        paths["png"] = png
    return paths
