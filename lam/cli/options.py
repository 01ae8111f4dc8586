"""Options and helpers shared by the commands: which model, how it runs, which index."""

from __future__ import annotations

from pathlib import Path

import click


def model_options(f):
    f = click.option("--model", "model_path", default=None, help="model folder or hub id (default: bundled)")(f)
    f = click.option("--device", default=None, help="cpu (default), cuda, …")(f)
    return f


def input_options(f):
    """Where the texts come from: --lines, --jsonl, --text-field, --glob, --encoding, --skip-errors;
    their names are :class:`lam.cli.inputs.Inputs`'s keywords, so a command passes them on whole."""
    f = click.option(
        "--skip-errors", is_flag=True, help="leave out, with a warning, files that do not decode and bad records"
    )(f)
    f = click.option("--encoding", default="utf-8", show_default=True, help="text encoding of files and stdin")(f)
    f = click.option("--glob", "pattern", default="*.txt", show_default=True, help="files to take from folders")(f)
    f = click.option("--text-field", default="text", show_default=True, help="JSON Lines field with the text")(f)
    f = click.option("--jsonl/--no-jsonl", default=None, help="read JSON Lines (default: by .jsonl suffix)")(f)
    f = click.option("--lines", is_flag=True, help="one text per line (plain files and stdin)")(f)
    return f


def _apply_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    from lam.threads import set_threads

    set_threads(value)  # process-wide, so it applies as soon as the option is read


def threads_option(f):
    """--threads: CPU threads for the whole process (every command that runs the model takes it)."""
    f = click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        expose_value=False,
        callback=_apply_threads,
        help="CPU threads (default: the CPUs this process may use; 1 is often faster on a busy machine)",
    )(f)
    return f


def runtime_options(f):
    """--quantize, --backend and --threads: how the model runs (every command that embeds takes them)."""
    f = threads_option(f)
    f = click.option(
        "--backend",
        type=click.Choice(["torch", "onnx"]),
        default="torch",
        show_default=True,
        help="onnx: one-segment texts (≤ 254 tokens) on ONNX Runtime, faster on CPU (needs the onnx extra)",
    )(f)
    f = click.option(
        "--quantize",
        type=click.Choice(["int8", "bf16"]),
        default=None,
        help="int8: the attention's Linears on int8 kernels (with --backend onnx, every MatMul of short texts "
        "too: the fastest mode for short text; CPU); bf16: every Linear and the attention in bfloat16, the "
        "memory in float32 (the fastest for long text on CPUs with AVX-512 BF16 or AMX); an index remembers "
        "which model built it",
    )(f)
    return f


def load_model(model_path: str | None, device: str | None, quantize: str | None, backend: str, **kwargs):
    """``LAM(...)``, with LAM's own errors (bad weights, bad option mixes) as clean CLI errors."""
    from lam import LAM, LAMError

    try:
        return LAM(model_path, device=device, quantize=quantize, backend=backend, **kwargs)
    except (LAMError, ValueError, ImportError) as err:
        raise click.ClickException(str(err)) from err


INDEX_OPTION = click.option(
    "--index",
    "index_path",
    default="index.lam",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="the index file (SQLite)",
)


def open_index(
    index_path: str,
    model_path: str | None,
    device: str | None,
    quantize: str | None,
    backend: str,
    must_exist: bool,
    timeout: float | None = None,
):
    """The index at ``index_path`` on the chosen model; the file is checked before the model loads.
    ``timeout``: seconds a write waits for another process's (None: the Index default)."""
    from lam import Index, LAMError
    from lam.retrieval.store import check_index_path

    if must_exist and not Path(index_path).exists():
        raise click.ClickException(f"no index at {index_path} (build one with `lam index`)")
    try:
        check_index_path(Path(index_path), create=False if must_exist else None)
        model = load_model(model_path, device, quantize, backend)
        waits = {} if timeout is None else {"timeout": timeout}
        return Index(index_path, model, create=False if must_exist else None, **waits)
    except LAMError as err:
        raise click.ClickException(str(err)) from err
