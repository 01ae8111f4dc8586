"""``lam``: one entry point, one sub-command per job."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from lam.cli.inputs import TextSource, iter_sources

_BIG_FILE = 4 << 20  # files above 4 MB are streamed from disk instead of read whole


def _model_options(f):
    f = click.option("--model", "model_path", default=None, help="model folder or hub id (default: bundled)")(f)
    f = click.option("--device", default=None, help="cpu (default), cuda, …")(f)
    return f


def _runtime_options(f):
    """--quantize and --backend: how the model runs (every command that embeds takes them)."""
    f = click.option(
        "--backend",
        type=click.Choice(["torch", "onnx"]),
        default="torch",
        show_default=True,
        help="onnx: one-segment texts (≤ 254 tokens) on ONNX Runtime, about 2x on CPU (needs lam[onnx])",
    )(f)
    f = click.option(
        "--quantize",
        type=click.Choice(["int8"]),
        default=None,
        help="int8: the attention's Linears on int8 kernels (CPU, faster; an index remembers which model built it)",
    )(f)
    return f


def _load_model(model_path: str | None, device: str | None, quantize: str | None, backend: str, **kwargs):
    """``LAM(...)``, with LAM's own errors (bad weights, bad option mixes) as clean CLI errors."""
    from lam import LAM, LAMError

    try:
        return LAM(model_path, device=device, quantize=quantize, backend=backend, **kwargs)
    except (LAMError, ValueError, ImportError) as err:
        raise click.ClickException(str(err)) from err


@click.group()
@click.version_option(package_name="lam")
def cli() -> None:
    """LAM: text embeddings that never run out of context."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="out.npy (matrix + out.ids.txt) or out.jsonl; default: JSON Lines on stdout",
)
@click.option("--lines", is_flag=True, help="one text per line (plain files and stdin)")
@click.option("--jsonl/--no-jsonl", default=None, help="read JSON Lines (default: by .jsonl suffix)")
@click.option("--text-field", default="text", show_default=True, help="JSON Lines field with the text")
@click.option("--glob", "pattern", default="*.txt", show_default=True, help="files to take from folders")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--output-dim", default=None, type=click.IntRange(min=1), help="Matryoshka truncation")
@click.option("--max-tokens", default=None, type=click.IntRange(min=1), help="cap tokens per text")
@click.option("--normalize/--no-normalize", default=True, show_default=True)
@click.option("--progress/--no-progress", default=None, help="progress bar (default: when stderr is a terminal)")
@_model_options
@_runtime_options
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
    model = _load_model(model_path, device, quantize, backend, max_tokens=max_tokens)
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
        if src.path is not None and src.path.stat().st_size > _BIG_FILE:
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
        if src.path is not None:
            try:
                src = TextSource(src.id, text=src.path.read_text(encoding="utf-8"))
            except UnicodeDecodeError as err:
                raise click.ClickException(f"{src.path} is not UTF-8 text ({err.reason})") from err
        pending.append(src)
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


_INDEX_OPTION = click.option(
    "--index",
    "index_path",
    default="index.lam",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="the index file (SQLite)",
)


def _open_index(
    index_path: str, model_path: str | None, device: str | None, quantize: str | None, backend: str, must_exist: bool
):
    from lam import Index, LAMError

    if must_exist and not Path(index_path).is_file():
        raise click.ClickException(f"no index at {index_path} (build one with `lam index`)")
    model = _load_model(model_path, device, quantize, backend)
    try:
        return Index(index_path, model)
    except LAMError as err:
        raise click.ClickException(str(err)) from err


@cli.command(name="index")
@click.argument("inputs", nargs=-1, required=True)
@_INDEX_OPTION
@click.option("--lines", is_flag=True, help="one document per line (plain files and stdin)")
@click.option("--jsonl/--no-jsonl", default=None, help="read JSON Lines (default: by .jsonl suffix)")
@click.option("--text-field", default="text", show_default=True, help="JSON Lines field with the text")
@click.option("--glob", "pattern", default="*.txt", show_default=True, help="files to take from folders")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1), help="documents per commit")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: when stderr is a terminal)")
@_model_options
@_runtime_options
def index_command(
    inputs, index_path, lines, jsonl, text_field, pattern, batch_size, progress, model_path, device, quantize, backend
):
    """Add documents of any length to a persistent index (an id indexed again is replaced).

    \b
    lam index contracts/ --index contracts.lam      # every *.txt; id = the file path
    lam index book.txt                              # big files are streamed from disk
    lam index corpus.jsonl --text-field body        # {"id": ..., "body": ...} per line
    """
    from tqdm.auto import tqdm

    index = _open_index(index_path, model_path, device, quantize, backend, must_exist=False)
    show = sys.stderr.isatty() if progress is None else progress
    sources = list(iter_sources(inputs, lines, jsonl, text_field, pattern))
    bar = tqdm(total=len(sources), unit="doc", disable=not show, desc="lam index", file=sys.stderr)
    pending: list[tuple[str, str]] = []
    skipped = 0

    def flush() -> None:
        if pending:
            index.index_many(pending, batch_size=batch_size, show_progress_bar=False)
            bar.update(len(pending))
            pending.clear()

    try:
        for src in sources:
            if src.path is not None and src.path.stat().st_size > _BIG_FILE:
                flush()
                index.index_file(src.id, src.path)  # streamed: constant memory
                bar.update(1)
                continue
            text = src.text
            if src.path is not None:
                try:
                    text = src.path.read_text(encoding="utf-8")
                except UnicodeDecodeError as err:
                    raise click.ClickException(f"{src.path} is not UTF-8 text ({err.reason})") from err
            if not text.strip():
                skipped += 1
                continue
            if any(doc_id == src.id for doc_id, _ in pending):
                flush()  # the same id twice: the later text replaces the earlier, in order
            pending.append((src.id, text))
            if len(pending) >= batch_size:
                flush()
        flush()
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        raise click.ClickException(str(err)) from err
    finally:
        bar.close()
    stats = index.stats()
    index.close()
    note = f" ({skipped} empty skipped)" if skipped else ""
    click.echo(
        f"{index_path}: {stats['documents']} documents, {stats['passages']} passages, "
        f"{stats['tokens']} tokens, {stats['bytes'] / 2**20:.1f} MiB{note}",
        err=True,
    )


def _highlight(text: str, words: set[str], width: int | None) -> str:
    """The passage with query words in bold; cut to ``width`` characters around the first match."""
    import re

    spans = [m.span() for m in re.finditer(r"\w+", text) if m.group().lower() in words]
    if width is not None and len(text) > width:
        centre = spans[0][0] if spans else 0
        lo = max(0, min(centre - width // 3, len(text) - width))
        text, spans = text[lo : lo + width], [(a - lo, b - lo) for a, b in spans if a >= lo and b <= lo + width]
        text = ("…" if lo else "") + text + "…"
        spans = [(a + (1 if lo else 0), b + (1 if lo else 0)) for a, b in spans]
    out, last = [], 0
    for a, b in spans:
        out += [text[last:a], click.style(text[a:b], bold=True, fg="yellow")]
        last = b
    return "".join(out) + text[last:]


@cli.command(name="search")
@click.argument("query")
@_INDEX_OPTION
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per hit")
@click.option("--full", is_flag=True, help="print whole passages (default: 400 characters around the match)")
@_model_options
@_runtime_options
def search_command(query, index_path, top_k, as_json, full, model_path, device, quantize, backend):
    """Rank indexed documents for a query; show where in each the answer is.

    \b
    lam search "who approved the budget?" --index meetings.lam -k 3
    """
    from lam.retrieval.lexical import query_words

    if not query.strip():
        raise click.BadParameter("the query is empty")
    index = _open_index(index_path, model_path, device, quantize, backend, must_exist=True)
    hits = index.search(query, top_k=top_k)
    index.close()
    if as_json:
        for h in hits:
            record = {"doc_id": h.doc_id, "score": h.score, "start": h.start, "end": h.end, "passage": h.passage}
            click.echo(json.dumps({**record, "scores": h.scores, "metadata": h.metadata}))
        return
    if not hits:
        click.echo("no documents in the index", err=True)
    words = set(query_words(query))
    for rank, h in enumerate(hits, 1):
        click.echo(click.style(f"{rank}. {h.doc_id}", bold=True) + f"  score {h.score:.3f}  chars {h.start}-{h.end}")
        click.echo("   " + _highlight(" ".join(h.passage.split()), words, None if full else 400))


@cli.command(name="eval")
@click.option(
    "--suite",
    "suites",
    multiple=True,
    type=click.Choice(["sts", "fidelity", "longembed", "qmsum"]),
    help="sts: STS-B test/dev, SICK-R test, STS12-15 (cosine Spearman x100, as MTEB). "
    "fidelity: mean cosine to the teacher with full 512-token attention on 128 held-out 510-token "
    "passages (dense encoders only). "
    "longembed: regenerated passkey + needle, 100 docs / 50 queries per length, nDCG@1 per length "
    "and their mean. qmsum: QMSum val, 35 transcripts, 272 queries as questions and as answer "
    "summaries, nDCG@10. Repeatable; default: all four.",
)
@click.option(
    "--encoder",
    "encoders",
    multiple=True,
    type=click.Choice(
        [
            "lam",
            "lam-memory-off",
            "lam-fast-only",
            "lam-slow-only",
            "lam-int8",
            "teacher",
            "teacher-chunk-mean",
            "bm25",
            "lam-search",
        ]
    ),
    help="lam: the model (--model); lam-memory-off: the same weights with the memory off (windowed "
    "teacher); lam-fast-only / lam-slow-only: ablations that read only one memory state; lam-int8: the "
    "model with int8 Linears (--quantize); teacher: "
    "all-MiniLM-L6-v2, 256-token truncation; teacher-chunk-mean: the teacher on 256-token chunks, "
    "averaged; bm25: lexical (retrieval suites only); lam-search: the index/search engine (best "
    "passage + document vector + BM25, fused; retrieval suites only). Default: all but the ablations "
    "and lam-int8.",
)
@click.option(
    "--lengths",
    default="256,512,1024,2048,4096,8192,16384,32768",
    show_default=True,
    help="comma-separated context lengths for longembed; 131072 and 1048576 add passkey-only sets "
    "(the mean stays over LongEmbed's lengths)",
)
@click.option(
    "--docs",
    "n_docs",
    default=100,
    show_default=True,
    type=click.IntRange(2, 100),
    help="documents per length (queries: min(50, docs))",
)
@click.option("--seed", default=None, type=int, help="synthetic-set seed (default: the evaluation seed)")
@click.option(
    "--out",
    "out_dir",
    default="runs/eval",
    show_default=True,
    type=click.Path(file_okay=False),
    help="folder for <name>.json, <name>.md and <name>-longembed.png",
)
@click.option("--name", default=None, help="file stem (default: eval-<date>)")
@click.option(
    "--fusion-weights",
    default=None,
    metavar="P,D,L,DL",
    help="lam-search's weights of passage, document, lexical and document-lexical scores "
    "(default: lam.retrieval.DEFAULT_WEIGHTS, tuned for the bundled weights)",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
@_model_options
def eval_command(
    suites, encoders, lengths, n_docs, seed, out_dir, name, fusion_weights, progress, model_path, device
) -> None:
    """Measure LAM against the teacher, chunk-averaging and BM25 on the same data, in one run.

    Data comes from ../shared/data (or $LAM_DATA). Writes a JSON record (scores, models,
    weights hash, git commit, machine, seconds), a markdown table and a PNG of score against
    context length.
    """
    import time

    from lam.evaluation import ENCODERS, SUITES, run_evaluation
    from lam.evaluation.report import markdown_table, write_report
    from lam.evaluation.synthetic import EVAL_SEED, EXTRA_PASSKEY_LENGTHS, LENGTHS

    try:
        length_list = tuple(int(x) for x in lengths.split(",") if x.strip())
    except ValueError as err:
        raise click.BadParameter(f"--lengths must be comma-separated integers: {err}") from err

    weights = None
    if fusion_weights is not None:
        from lam.retrieval import FusionWeights

        try:
            weights = FusionWeights.parse(fusion_weights)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--fusion-weights") from err

    bad = [L for L in length_list if L not in LENGTHS + EXTRA_PASSKEY_LENGTHS]
    if bad:
        raise click.BadParameter(
            f"lengths {bad} are not LongEmbed lengths {LENGTHS} or extra passkey lengths {EXTRA_PASSKEY_LENGTHS}"
        )
    try:
        record = run_evaluation(
            suites=tuple(suites) or SUITES,
            encoders=tuple(encoders) or ENCODERS,
            model_path=model_path,
            device=device,
            lengths=length_list,
            n_docs=n_docs,
            seed=EVAL_SEED if seed is None else seed,
            progress=progress,
            fusion_weights=weights,
        )
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from err
    paths = write_report(record, out_dir, name or time.strftime("eval-%Y%m%d-%H%M%S"))
    click.echo(markdown_table(record))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()), err=True)


@cli.command()
@click.option(
    "--stage",
    type=click.Choice(["transfer", "embed", "chain", "long", "cloze"]),
    default="transfer",
    show_default=True,
    help="transfer: stage 1, memory reads match full attention layer by layer; embed: stage 2, "
    "pooled embeddings of 508-token texts match the full-attention teacher; chain: along a text of "
    "--long-segments segments, each segment (memory carried from all before it) matches the teacher's view "
    "of it with the previous segment in context; long: documents of "
    "--long-segments segments that share a context and each hide a different sentence must retrieve the "
    "teacher embedding of their own sentence (InfoNCE), plus the embed loss on their first 508 tokens; "
    "cloze: the same, but each document must retrieve a passage of its own text among the batch's, "
    "--group documents per batch coming from different pages of one book",
)
@click.option(
    "--long-segments",
    default=4,
    show_default=True,
    type=click.IntRange(min=2),
    help="long / chain / cloze: segments per document",
)
@click.option(
    "--group",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="long: documents per shared context; cloze: documents per book",
)
@click.option(
    "--passage-tokens",
    default=48,
    show_default=True,
    type=click.IntRange(min=1),
    help="long: longest hidden sentence; cloze: passage length (tokens)",
)
@click.option(
    "--embed-weight", default=1.0, show_default=True, type=float, help="long / cloze: weight of the embed loss"
)
@click.option(
    "--pool",
    default="mean",
    show_default=True,
    type=click.Choice(["mean", "idf"]),
    help="embed / cloze: the student's pool in the loss (idf: passage IDF of the model's config, as LAM ships)",
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
@_model_options
def distill(
    stage,
    long_segments,
    group,
    passage_tokens,
    embed_weight,
    pool,
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

    Writes <out>/model (a LAM model folder), log.jsonl, loss.png, summary.json (512-token
    fidelity before/after, mean and IDF pool) and checkpoint.pt (for --resume; never commit it).
    """
    from lam.distill.train import DistillConfig, train

    cfg = DistillConfig(
        stage=stage,
        long_segments=long_segments,
        group=group,
        passage_tokens=passage_tokens,
        embed_weight=embed_weight,
        pool=pool,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device or "cpu",
        out=out,
        target_cache=target_cache or None,
        name=name,
    )
    path = train(cfg, model_path=model_path, resume=resume, progress=progress)
    click.echo((path / "summary.json").read_text())


@cli.command()
@click.argument("model_a", type=click.Path(exists=True, file_okay=False))
@click.argument("model_b", type=click.Path(exists=True, file_okay=False))
@click.option("--alpha", required=True, type=click.FloatRange(0, 1), help="weight of MODEL_B: (1 − α)·A + α·B")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="folder of the merged model")
@click.option("--name", default=None, help="name of the merged model (default: <a>~<b>@<alpha>)")
def merge(model_a, model_b, alpha, out, name) -> None:
    """Interpolate the weights of two LAM models trained from one start (WiSE-FT).

    Both must share every config field but the name; writes a normal model folder (fp16).
    """
    from lam.distill.merge import interpolate_models
    from lam.errors import WeightsError

    try:
        path = interpolate_models(model_a, model_b, alpha, out, name=name)
    except WeightsError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {path}")


@cli.command()
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
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(min=1), help="texts per model call")
@click.option("--max-wait-ms", default=2.0, show_default=True, type=click.FloatRange(min=0), help="batching wait")
@click.option(
    "--queue-size", default=256, show_default=True, type=click.IntRange(min=1), help="waiting requests (503 beyond)"
)
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="one log line per request")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@_model_options
@_runtime_options
def serve(
    host,
    port,
    index_path,
    api_key,
    output_dim,
    max_items,
    max_bytes,
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
    """An OpenAI-compatible embeddings server (needs lam[server]).

    \b
    lam serve --port 8000 --index docs.lam --backend onnx
    curl localhost:8000/v1/embeddings -H 'Content-Type: application/json' -d '{"input": ["hello"]}'
    """
    try:
        import uvicorn

        from lam.server import ServerLimits, create_app
    except ImportError as err:
        raise click.ClickException(f"lam serve needs the server extra: pip install 'lam[server]' ({err})") from err
    from lam.heap import fix_mmap_threshold

    fix_mmap_threshold()  # before the model exists: a long-running process must not keep freed batches
    limits = ServerLimits(max_items, max_bytes, max_batch, max_wait_ms, queue_size)
    if index_path:
        index = _open_index(index_path, model_path, device, quantize, backend, must_exist=False)
        model = index.model
    else:
        index, model = None, _load_model(model_path, device, quantize, backend)
    try:
        app = create_app(model, index, api_key=api_key or None, limits=limits, default_dimensions=output_dim)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    auth = "required" if api_key else "off"
    click.echo(f"lam serve: http://{host}:{port} (index: {index_path or 'none'}; API key: {auth})", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)


@cli.command()
@click.argument("inputs", nargs=-1)
@click.option("--lines", is_flag=True, help="one text per line (plain files and stdin)")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--texts", "n_texts", default=2000, show_default=True, type=click.IntRange(min=1), help="synthetic texts")
@click.option("--long-tokens", default=100_000, show_default=True, type=click.IntRange(min=0), help="0: skip")
@click.option("--output-dim", default=None, type=click.IntRange(min=1), help="Matryoshka truncation")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write JSON")
@_model_options
@_runtime_options
def bench(inputs, lines, batch_size, n_texts, long_tokens, output_dim, output, model_path, device, quantize, backend):
    """How fast is LAM here, with these options? (The full comparison is `make bench`.)

    \b
    lam bench                                  # synthetic sentences + one 100K-token text
    lam bench --backend onnx --quantize int8   # fails: onnx runs the float model
    lam bench notes.txt --lines --long-tokens 0
    """
    from lam.evaluation.throughput import measure_long_text, measure_texts, synthetic_sentences

    model = _load_model(model_path, device, quantize, backend)
    if inputs:
        texts = [
            s.text if s.path is None else s.path.read_text(encoding="utf-8")
            for s in iter_sources(inputs, lines, None, "text", "*.txt")
        ]
    else:
        texts = synthetic_sentences(model, n_texts)
    if not texts:
        raise click.ClickException("no texts to time")
    result = {"options": {"quantize": quantize, "backend": backend, "device": str(model.device)}}
    result["texts"] = measure_texts(model, texts, batch_size=batch_size, output_dim=output_dim)
    if long_tokens:
        result["long_text"] = measure_long_text(model, long_tokens)
    text = json.dumps(result, indent=2)
    if output is not None:
        output.write_text(text + "\n")
    click.echo(text)


@cli.command(name="embed-corpus")
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
@_model_options
@_runtime_options
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
    """Embed a corpus on a Ray cluster (needs lam[ray]): Parquet rows id, embedding, tokens.

    \b
    lam embed-corpus corpus.jsonl -o vectors/               # local Ray, one LAM per CPU
    lam embed-corpus s3://bucket/docs/ -o out/ --address auto --passages
    """
    try:
        import ray

        from lam.distributed import embed_corpus
    except ImportError as err:
        raise click.ClickException(f"lam embed-corpus needs Ray Data: pip install 'lam[ray]' ({err})") from err
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


@cli.command(name="import-corpus")
@click.argument("output", type=click.Path(exists=True, file_okay=False))
@_INDEX_OPTION
@_model_options
@_runtime_options
def import_corpus_command(output, index_path, model_path, device, quantize, backend) -> None:
    """Load an `lam embed-corpus --passages` result into a persistent index (no re-encoding)."""
    from lam.distributed import import_corpus

    index = _open_index(index_path, model_path, device, quantize, backend, must_exist=False)
    try:
        added = import_corpus(output, index)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    finally:
        index.close()
    click.echo(f"{index_path}: {added} documents imported", err=True)


if __name__ == "__main__":
    cli()
