"""``lam index`` and ``lam search``: a persistent index of documents of any length."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lam.cli.inputs import Inputs
from lam.cli.options import INDEX_OPTION, input_options, model_options, open_index, runtime_options


@click.command(name="index")
@click.argument("inputs", nargs=-1, required=True)
@INDEX_OPTION
@input_options
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1), help="documents per commit")
@click.option(
    "--wait",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="seconds to wait while another process writes to the index, then fail",
)
@click.option("--progress/--no-progress", default=None, help="progress bar (default: when stderr is a terminal)")
@model_options
@runtime_options
def index_command(
    inputs,
    index_path,
    batch_size,
    wait,
    progress,
    model_path,
    device,
    quantize,
    backend,
    **source_options,
):
    """Add documents of any length to a persistent index (an id indexed again is replaced).

    \b
    lam index contracts/ --index contracts.lam      # every *.txt; id = the file path
    lam index book.txt                              # big files are streamed from disk
    lam index corpus.jsonl --text-field body        # {"id": ..., "body": ...} per line
    """
    from tqdm.auto import tqdm

    from lam import LAMError

    sources = Inputs(inputs, **source_options)  # the input_options, checked before the model loads
    existed = Path(index_path).exists()
    index = open_index(index_path, model_path, device, quantize, backend, must_exist=False, timeout=wait)
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=sources.count, unit="doc", disable=not show, desc="lam index", file=sys.stderr)
    pending: list[tuple[str, str]] = []
    skipped = 0

    def flush() -> None:
        if pending:
            index.index_many(pending, batch_size=batch_size, show_progress_bar=False)
            bar.update(len(pending))
            pending.clear()

    try:
        for src in sources:
            if src.streamed:
                flush()
                index.index_stream(src.id, src.pieces())  # a big file or stdin: constant memory
                bar.update(1)
                continue
            text = src.read()
            if not text.strip():
                skipped += 1
                continue
            if any(doc_id == src.id for doc_id, _ in pending):
                flush()  # the same id twice: the later text replaces the earlier, in order
            pending.append((src.id, text))
            if len(pending) >= batch_size:
                flush()
        flush()
    except (LAMError, ValueError, TypeError) as err:
        _discard_if_new(index, existed)
        raise click.ClickException(str(err)) from err
    except BaseException:
        _discard_if_new(index, existed)
        raise
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


def _discard_if_new(index, existed: bool) -> None:
    """A failed ``lam index`` that created its file and committed nothing leaves no file behind."""
    if existed or index.store.path == ":memory:":
        return
    empty = len(index) == 0
    index.close()
    if empty:
        for suffix in ("", "-wal", "-shm"):
            Path(index.path + suffix).unlink(missing_ok=True)


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


@click.command(name="search")
@click.argument("query")
@INDEX_OPTION
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per hit")
@click.option("--full", is_flag=True, help="print whole passages (default: 400 characters around the match)")
@model_options
@runtime_options
def search_command(query, index_path, top_k, as_json, full, model_path, device, quantize, backend):
    """Rank indexed documents for a query; show where in each the answer is.

    \b
    lam search "who approved the budget?" --index meetings.lam -k 3
    """
    from lam.retrieval.lexical import query_words

    if not query.strip():
        raise click.BadParameter("the query is empty")
    index = open_index(index_path, model_path, device, quantize, backend, must_exist=True)
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
