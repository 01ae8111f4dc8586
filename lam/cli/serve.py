"""``lam serve``: the OpenAI-compatible embeddings server, with index and search."""

from __future__ import annotations

import click

from lam.cli.options import load_model, model_options, open_index, runtime_options


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on (0.0.0.0: every interface)")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--index",
    "index_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="index file for /v1/index, /v1/search and /v1/documents (created if missing; default: none)",
)
@click.option(
    "--api-key",
    envvar="LAM_API_KEY",
    default=None,
    help="require 'Authorization: Bearer KEY' (prefer the LAM_API_KEY variable: arguments show in ps)",
)
@click.option("--output-dim", default=None, type=click.IntRange(min=1), help="dimensions when a request names none")
@click.option("--max-items", default=2048, show_default=True, type=click.IntRange(min=1), help="inputs per request")
@click.option("--max-bytes", default=1 << 20, show_default=True, type=click.IntRange(min=1), help="bytes per request")
@click.option("--max-tokens", default=1 << 18, show_default=True, type=click.IntRange(min=1), help="tokens per request")
@click.option(
    "--max-results", default=10_000, show_default=True, type=click.IntRange(min=1), help="queries × top_k per search"
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="a Host name served without an API key (repeatable; '*': any). Default: localhost, 127.0.0.1, ::1",
)
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(min=1), help="texts per model call")
@click.option("--max-wait-ms", default=2.0, show_default=True, type=click.FloatRange(min=0), help="batching wait")
@click.option(
    "--queue-size", default=256, show_default=True, type=click.IntRange(min=1), help="waiting requests (503 beyond)"
)
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="one log line per request")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@model_options
@runtime_options
def serve(
    host,
    port,
    index_path,
    api_key,
    output_dim,
    max_items,
    max_bytes,
    max_tokens,
    max_results,
    allowed_hosts,
    max_batch,
    max_wait_ms,
    queue_size,
    access_log,
    log_level,
    model_path,
    device,
    quantize,
    backend,
) -> None:
    """An OpenAI-compatible embeddings server (needs the server extra).

    \b
    lam serve --port 8000 --index docs.lam --backend onnx
    curl localhost:8000/v1/embeddings -H 'Content-Type: application/json' -d '{"input": ["hello"]}'
    """
    try:
        import uvicorn

        from lam.server import ServerLimits, create_app
    except ImportError as err:
        hint = "pip install fastapi uvicorn orjson (the server extra)"
        raise click.ClickException(f"lam serve needs {hint} ({err})") from err
    from lam.heap import fix_mmap_threshold
    from lam.server.guards import LOOPBACK_HOSTS, is_loopback

    if not api_key and not is_loopback(host):
        click.secho(
            f"WARNING: listening on {host} without an API key: anyone who can reach this port can embed, "
            "search, add and delete documents. Set LAM_API_KEY. Without a key, only requests addressed to "
            f"{', '.join((*LOOPBACK_HOSTS, *allowed_hosts))} are served (--allowed-host adds names).",
            err=True,
            fg="red",
            bold=True,
        )
    fix_mmap_threshold()  # before the model exists: a long-running process must not keep freed batches
    limits = ServerLimits(
        max_items=max_items,
        max_bytes=max_bytes,
        max_tokens=max_tokens,
        max_results=max_results,
        max_batch_texts=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=queue_size,
    )
    if index_path:
        index = open_index(index_path, model_path, device, quantize, backend, must_exist=False)
        model = index.encoder
    else:
        index, model = None, load_model(model_path, device, quantize, backend)
    try:
        hosts = None if api_key or not allowed_hosts else [*LOOPBACK_HOSTS, *allowed_hosts]
        app = create_app(
            model, index, api_key=api_key or None, limits=limits, default_dimensions=output_dim, allowed_hosts=hosts
        )
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    auth = "required" if api_key else "off"
    click.echo(f"lam serve: http://{host}:{port} (index: {index_path or 'none'}; API key: {auth})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)
