"""``lam distill``: train the memory against the full-attention teacher."""

from __future__ import annotations

import click

from lam.cli.options import model_options, threads_option


@click.command()
@click.option(
    "--stage",
    type=click.Choice(["embed", "cloze", "retrieve"]),
    default="embed",
    show_default=True,
    help="embed: pooled embeddings of 508-token texts (two segments) match the full-attention teacher; "
    "cloze: documents of --long-segments segments must retrieve a passage of their own text among the "
    "batch's, --group documents per batch coming from different pages of one book, plus the embed loss on "
    "their first 508 tokens; retrieve: windows of --long-segments segments of QMSum train meetings must be found by "
    "their query and its answer among the batch's, --group windows per meeting, plus the embed loss",
)
@click.option(
    "--long-segments",
    default=4,
    show_default=True,
    type=click.IntRange(min=2),
    help="cloze, retrieve: segments per document",
)
@click.option(
    "--group",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="cloze, retrieve: documents per book or meeting",
)
@click.option(
    "--passage-tokens", default=48, show_default=True, type=click.IntRange(min=1), help="cloze: passage length"
)
@click.option(
    "--embed-weight", default=1.0, show_default=True, type=float, help="cloze, retrieve: weight of the embed loss"
)
@click.option("--steps", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=3e-3, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default="runs/distill", show_default=True, type=click.Path(file_okay=False))
@click.option("--resume", is_flag=True, help="continue from <out>/checkpoint.pt")
@click.option("--name", default=None, help="name of the trained model (default: <start model>+<stage>)")
@click.option(
    "--target-cache",
    default="runs/teacher-targets.sqlite",
    show_default=True,
    help="SQLite file of fp16 teacher targets, reused across runs; '' recomputes every target",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@model_options
@threads_option
def distill(
    stage,
    long_segments,
    group,
    passage_tokens,
    embed_weight,
    steps,
    batch_size,
    lr,
    seed,
    out,
    resume,
    name,
    target_cache,
    progress,
    model_path,
    device,
) -> None:
    """Train LAM's memory against the full-attention teacher (needs the `dev` extras).

    Writes <out>/model (a LAM model folder, its memory on), log.jsonl, loss.png, summary.json
    (512-token fidelity before/after) and checkpoint.pt (for --resume; never commit it). The
    start model's memory is read and trained even where its config leaves it off (the bundled
    model keeps its trained memory in the weights file, unread).
    """
    from lam.distill.train import DistillConfig, train
    from lam.errors import LAMError

    cfg = DistillConfig(
        stage=stage,
        long_segments=long_segments,
        group=group,
        passage_tokens=passage_tokens,
        embed_weight=embed_weight,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device or "cpu",
        out=out,
        target_cache=target_cache or None,
        name=name,
    )
    try:
        path = train(cfg, model_path=model_path, resume=resume, progress=progress)
    except (LAMError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo((path / "summary.json").read_text())
