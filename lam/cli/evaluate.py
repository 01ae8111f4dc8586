"""``lam eval`` and ``lam bench``: quality against the baselines, and speed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lam.cli.inputs import Inputs
from lam.cli.options import load_model, model_options, runtime_options, threads_option


@click.command(name="eval")
@click.option(
    "--suite",
    "suites",
    multiple=True,
    type=click.Choice(["sts", "fidelity", "longembed", "qmsum", "genres"]),
    help="sts: STS-B test/dev, SICK-R test, STS12-15 (cosine Spearman x100, as MTEB). "
    "fidelity: mean cosine to the teacher with full 512-token attention on 128 held-out 510-token "
    "passages (dense encoders only). "
    "longembed: regenerated passkey + needle, 100 docs / 50 queries per length, nDCG@1 per length "
    "and their mean. qmsum: QMSum val, 35 transcripts, 272 queries as questions and as answer "
    "summaries, nDCG@10. genres: long documents of twelve kinds, nDCG@10 per kind and their mean "
    "(QMSum val meetings, queries and answers; L-Eval's 176 documents of eleven kinds pooled into one "
    "corpus, its questions and reference answers or summaries as queries). Repeatable; default: all five.",
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
            "lam-bf16",
            "teacher",
            "teacher-chunk-mean",
            "bm25",
            "lam-search",
        ]
    ),
    help="lam: the model (--model); lam-memory-off: the same weights with the memory off (windowed "
    "teacher; for a model without memory, lam's scores, not measured twice); lam-fast-only / "
    "lam-slow-only: ablations that read only one memory state; lam-int8 / lam-bf16: "
    "the model with int8 or bf16 Linears (--quantize); teacher: "
    "all-MiniLM-L6-v2, 256-token truncation; teacher-chunk-mean: the teacher on 256-token chunks, "
    "averaged; bm25: lexical (retrieval suites only); lam-search: the index/search engine (best "
    "passage + document vector + BM25, fused; retrieval suites only). Default: all but the ablations "
    "and the quantised modes.",
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
@model_options
@threads_option
def eval_command(
    suites, encoders, lengths, n_docs, seed, out_dir, name, fusion_weights, progress, model_path, device
) -> None:
    """Measure LAM against the teacher, chunk-averaging and BM25 on the same data, in one run.

    Data comes from ../shared/data (or $LAM_DATA). Writes a JSON record (scores, models,
    weights hash, git commit, machine, seconds), a markdown table and a PNG of score against
    context length.
    """
    import time

    from lam.errors import LAMError
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
    except (FileNotFoundError, LAMError) as err:
        raise click.ClickException(str(err)) from err
    paths = write_report(record, out_dir, name or time.strftime("eval-%Y%m%d-%H%M%S"))
    click.echo(markdown_table(record))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()), err=True)


@click.command()
@click.argument("inputs", nargs=-1)
@click.option("--lines", is_flag=True, help="one text per line (plain files and stdin)")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--texts", "n_texts", default=2000, show_default=True, type=click.IntRange(min=1), help="synthetic texts")
@click.option("--long-tokens", default=100_000, show_default=True, type=click.IntRange(min=0), help="0: skip")
@click.option("--output-dim", default=None, type=click.IntRange(min=1), help="Matryoshka truncation")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write JSON")
@click.option(
    "--modes", "all_modes", is_flag=True, help="time every mode: torch (float, int8, bf16) and ONNX (float, int8)"
)
@model_options
@runtime_options
def bench(
    inputs,
    lines,
    batch_size,
    n_texts,
    long_tokens,
    output_dim,
    output,
    all_modes,
    model_path,
    device,
    quantize,
    backend,
):
    """How fast is LAM here, with these options? (The full comparison is `make bench`.)

    \b
    lam bench                                  # synthetic sentences + one 100K-token text
    lam bench --backend onnx --quantize int8   # the fastest mode for short text
    lam bench --quantize bf16                  # the fastest for long text (AVX-512 BF16 / AMX)
    lam bench --modes --long-tokens 20000      # every mode a user can choose, side by side
    lam bench notes.txt --lines --long-tokens 0
    """
    import torch

    from lam.evaluation.throughput import measure_long_text, measure_texts, synthetic_sentences

    sources = Inputs(inputs, lines=lines) if inputs else None
    modes = [(quantize, backend)]
    if all_modes:
        modes = [(None, "torch"), ("int8", "torch"), ("bf16", "torch"), (None, "onnx"), ("int8", "onnx")]
    runs, texts = [], None
    for mode_quantize, mode_backend in modes:
        options = {"quantize": mode_quantize, "backend": mode_backend}
        try:
            model = load_model(model_path, device, mode_quantize, mode_backend)
        except click.ClickException as err:
            if not all_modes:
                raise
            runs.append({"options": options, "unavailable": err.message})  # e.g. no onnxruntime
            continue
        if texts is None:
            texts = [s.read() for s in sources] if sources is not None else synthetic_sentences(model, n_texts)
            if not texts:
                raise click.ClickException("no texts to time")
        options.update(device=str(model.device), threads=torch.get_num_threads())
        run = {"options": options, "texts": measure_texts(model, texts, batch_size=batch_size, output_dim=output_dim)}
        if long_tokens and mode_backend == "torch":  # the ONNX modes run long text on torch too
            run["long_text"] = measure_long_text(model, long_tokens)
        runs.append(run)
    result = {"modes": runs} if all_modes else runs[0]
    text = json.dumps(result, indent=2)
    if output is not None:
        output.write_text(text + "\n")
    click.echo(text)
