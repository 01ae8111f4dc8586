"""``lam encode``: texts, files and folders to embeddings."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lam.cli.inputs import Inputs, TextSource, warn
from lam.cli.options import input_options, load_model, model_options, runtime_options
from lam.cli.outputs import EmbeddingWriter, check_output


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="out.npy (matrix + out.ids.txt) or out.jsonl, written whole or not at all; default: JSON Lines on stdout",
)
@input_options
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--output-dim", default=None, type=click.IntRange(min=1), help="Matryoshka truncation")
@click.option("--max-tokens", default=None, type=click.IntRange(min=1), help="cap tokens per text")
@click.option("--normalize/--no-normalize", default=True, show_default=True)
@click.option("--progress/--no-progress", default=None, help="progress bar (default: when stderr is a terminal)")
@model_options
@runtime_options
def encode(
    inputs,
    output,
    batch_size,
    output_dim,
    max_tokens,
    normalize,
    progress,
    model_path,
    device,
    quantize,
    backend,
    **source_options,
) -> None:
    """Embed texts from files, folders, stdin (-) or JSON Lines.

    \b
    lam encode book.txt -o book.npy            # one file = one text, any length
    lam encode docs/ -o docs.jsonl             # every *.txt under docs/
    cat q.txt | lam encode - --lines -o q.npy  # one text per line, streamed
    lam encode corpus.jsonl -o out.npy         # {"id": ..., "text": ...} per line
    """
    from tqdm.auto import tqdm

    check_output(output)
    sources = Inputs(inputs, **source_options)  # the input_options, checked before the model loads
    model = load_model(model_path, device, quantize, backend, max_tokens=max_tokens)
    full_dim = model.get_sentence_embedding_dimension()
    if output_dim is not None and output_dim > full_dim:
        raise click.BadParameter(
            f"at most {full_dim} (the model's dimension), got {output_dim}", param_hint="--output-dim"
        )
    show = sys.stderr.isatty() if progress is None else progress
    by_tokens = sources.has_streams  # one streamed text can take minutes: count its tokens
    bar = tqdm(
        total=None if by_tokens else sources.count,
        unit="tok" if by_tokens else "text",
        unit_scale=by_tokens,
        disable=not show,
        desc="lam encode",
        file=sys.stderr,
    )
    pending: list[TextSource] = []

    with EmbeddingWriter(output, output_dim or full_dim) as writer:

        def flush() -> None:
            if pending:
                tokens = model.stats()["tokens"]
                rows = model.encode(
                    [s.text for s in pending],
                    batch_size=batch_size,
                    output_dim=output_dim,
                    normalize_embeddings=normalize,
                )
                for src, row in zip(pending, rows):
                    writer.write(src.id, row)
                bar.update(model.stats()["tokens"] - tokens if by_tokens else len(pending))
                pending.clear()

        try:
            for src in sources:
                if src.streamed:  # a big file or stdin: read in blocks, memory stays flat
                    flush()
                    stream = model.stream()
                    for piece in src.pieces():
                        before = stream.tokens
                        stream.feed(piece)
                        bar.update(stream.tokens - before)
                    writer.write(src.id, stream.embedding(normalize=normalize, output_dim=output_dim))
                    continue
                pending.append(TextSource(src.id, text=src.read()))
                if len(pending) >= 4 * batch_size:
                    flush()
            flush()
        finally:
            bar.close()
    if writer.count == 0:
        warn("no texts in the inputs")
    if output is not None:
        click.echo(f"wrote {writer.count} embeddings of dim {writer.dim} to {output}", err=True)
