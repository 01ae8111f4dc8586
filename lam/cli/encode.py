"""``lam encode``: texts, files and folders to embeddings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from lam.cli.inputs import TextSource, iter_sources
from lam.cli.options import input_options, load_model, model_options, runtime_options


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="out.npy (matrix + out.ids.txt) or out.jsonl; default: JSON Lines on stdout",
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
    lines,
    jsonl,
    text_field,
    pattern,
    batch_size,
    output_dim,
    max_tokens,
    normalize,
    progress,
    model_path,
    device,
    quantize,
    backend,
) -> None:
    """Embed texts from files, folders, stdin (-) or JSON Lines.

    \b
    lam encode book.txt -o book.npy            # one file = one text, any length
    lam encode docs/ -o docs.jsonl             # every *.txt under docs/
    cat q.txt | lam encode - --lines -o q.npy  # one text per line
    lam encode corpus.jsonl -o out.npy         # {"id": ..., "text": ...} per line
    """
    from tqdm.auto import tqdm

    if output is not None and output.suffix not in (".npy", ".jsonl"):
        raise click.UsageError("--output must end in .npy or .jsonl")
    model = load_model(model_path, device, quantize, backend, max_tokens=max_tokens)
    show = sys.stderr.isatty() if progress is None else progress
    sources = list(iter_sources(inputs, lines, jsonl, text_field, pattern))
    bar = tqdm(total=len(sources), unit="text", disable=not show, desc="lam encode", file=sys.stderr)
    ids, rows = [], []

    def flush(batch: list[TextSource]) -> None:
        if batch:
            emb = model.encode(
                [s.text for s in batch], batch_size=batch_size, output_dim=output_dim, normalize_embeddings=normalize
            )
            rows.extend(emb)
            ids.extend(s.id for s in batch)
            bar.update(len(batch))
            batch.clear()

    pending: list[TextSource] = []
    for src in sources:
        if src.streamed:
            flush(pending)
            stream = model.stream()
            try:
                stream.feed_file(src.path)
            except UnicodeDecodeError as err:
                raise click.ClickException(f"{src.path} is not UTF-8 text ({err.reason})") from err
            rows.append(stream.embedding(normalize=normalize, output_dim=output_dim))
            ids.append(src.id)
            bar.update(1)
            continue
        pending.append(TextSource(src.id, text=src.read()))
        if len(pending) >= 4 * batch_size:
            flush(pending)
    flush(pending)
    bar.close()

    matrix = np.stack(rows).astype(np.float32)
    if output is not None and output.suffix == ".npy":
        np.save(output, matrix)
        output.with_suffix(".ids.txt").write_text("".join(f"{i}\n" for i in ids))
    else:
        handle = open(output, "w") if output is not None else sys.stdout
        for i, row in zip(ids, matrix):
            handle.write(json.dumps({"id": i, "embedding": [round(float(x), 7) for x in row]}) + "\n")
        if output is not None:
            handle.close()
    if output is not None:
        click.echo(f"wrote {len(ids)} embeddings of dim {matrix.shape[1]} to {output}", err=True)
