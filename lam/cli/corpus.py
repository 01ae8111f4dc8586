"""``lam embed-corpus`` and ``lam import-corpus``: a corpus on a Ray cluster, and into an index."""

from __future__ import annotations

import json

import click

from lam.cli.options import INDEX_OPTION, model_options, open_index, runtime_options


@click.command(name="embed-corpus")
@click.argument("source", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="a new folder for Parquet")
@click.option("--text-field", default="text", show_default=True)
@click.option("--id-field", default="id", show_default=True)
@click.option("--workers", default=None, type=click.IntRange(min=1), help="LAM actors (default: one per CPU)")
@click.option("--cpus-per-worker", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--gpus-per-worker", default=0.0, show_default=True, type=click.FloatRange(min=0))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="texts per forward")
@click.option("--rows-per-call", default=64, show_default=True, type=click.IntRange(min=1), help="rows per actor call")
@click.option("--output-dim", default=None, type=click.IntRange(min=1), help="Matryoshka truncation")
@click.option("--passages", is_flag=True, help="also write text and passage vectors, for `lam import-corpus`")
@click.option("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
@model_options
@runtime_options
def embed_corpus_command(
    source,
    output,
    text_field,
    id_field,
    workers,
    cpus_per_worker,
    gpus_per_worker,
    batch_size,
    rows_per_call,
    output_dim,
    passages,
    address,
    model_path,
    device,
    quantize,
    backend,
) -> None:
    """Embed a corpus on a Ray cluster (needs the ray extra): Parquet rows id, embedding, tokens.

    \b
    lam embed-corpus corpus.jsonl -o vectors/               # local Ray, one LAM per CPU
    lam embed-corpus s3://bucket/docs/ -o out/ --address auto --passages
    """
    try:
        import ray

        from lam.distributed import embed_corpus
    except ImportError as err:
        hint = "pip install 'ray[data]' (the ray extra)"
        raise click.ClickException(f"lam embed-corpus needs Ray Data: {hint} ({err})") from err
    if device not in (None, "cpu") and not gpus_per_worker:
        raise click.UsageError("workers run on CPU unless --gpus-per-worker is set")
    if address:
        ray.init(address=address)
    try:
        result = embed_corpus(
            list(source) if len(source) > 1 else source[0],
            output,
            model=model_path,
            text_field=text_field,
            id_field=id_field,
            workers=workers,
            cpus_per_worker=cpus_per_worker,
            gpus_per_worker=gpus_per_worker,
            batch_size=batch_size,
            rows_per_call=rows_per_call,
            quantize=quantize,
            backend=backend,
            output_dim=output_dim,
            passages=passages,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(result))


@click.command(name="import-corpus")
@click.argument("output", type=click.Path(exists=True, file_okay=False))
@INDEX_OPTION
@model_options
@runtime_options
def import_corpus_command(output, index_path, model_path, device, quantize, backend) -> None:
    """Load an `lam embed-corpus --passages` result into a persistent index (no re-encoding)."""
    from lam.distributed import import_corpus

    index = open_index(index_path, model_path, device, quantize, backend, must_exist=False)
    try:
        added = import_corpus(output, index)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    finally:
        index.close()
    click.echo(f"{index_path}: {added} documents imported", err=True)
