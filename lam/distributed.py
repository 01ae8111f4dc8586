"""Corpus-scale embedding on Ray Data (``pip install 'ray[data]'``, the [ray] extra): ``embed_corpus``.

Ray Data reads the corpus (Parquet, JSON Lines, or a folder of text files), hands batches of
documents to a pool of actors that each hold one :class:`~lam.LAM`, and writes Parquet rows
``id, embedding, tokens``. Nothing here schedules anything: reading, back-pressure, actor
restarts and task retries are Ray's (Ray Data restarts a dead map actor and re-runs its
batch, so a killed worker loses and duplicates no row). Each document is encoded whole by
the streaming encoder, so a long one is streamed, never truncated.

With ``passages=True`` each row also carries what :class:`~lam.Index` needs to make the
document searchable without encoding it again — the text and each passage's offsets,
token count and vector — and :func:`import_corpus` loads those files into a persistent index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lam.retrieval.index import Index

INSTALL_HINT = "lam.distributed needs Ray Data: pip install 'ray[data]' (the [ray] extra)"


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return ray


class CorpusEmbedder:
    """The map-batches worker: one LAM per actor; a batch of ``{id, text}`` → rows.

    Subclass it to change how a batch is prepared (the constructor takes the same keywords).
    """

    def __init__(
        self,
        model: str | None = None,
        quantize: str | None = None,
        backend: str = "torch",
        output_dim: int | None = None,
        passages: bool = False,
        batch_size: int = 32,
        threads: int | None = None,
        device: str | None = None,
    ) -> None:
        import torch

        from lam import LAM

        if passages and output_dim is not None:
            raise ValueError("passages=True writes full vectors for an index: leave output_dim unset")
        if threads:
            torch.set_num_threads(threads)
        self.model = LAM(model, device=device, quantize=quantize, backend=backend)
        self.output_dim = output_dim
        self.passages = passages
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]):
        """A pyarrow Table: plain Arrow types (``embedding`` is fixed_size_list<float32>), so
        the Parquet reads anywhere, with or without Ray."""
        import pyarrow as pa

        ids = [str(i) for i in batch["id"]]
        texts = [str(t) for t in batch["text"]]
        if self.passages:
            columns = self._with_passages(texts)
            emb = np.stack(columns.pop("embedding"))
        else:
            emb = self.model.encode(texts, batch_size=self.batch_size, output_dim=self.output_dim)
            columns = {"tokens": [self.model.count_tokens(t) for t in texts]}
        flat = pa.array(emb.astype(np.float32).ravel(), type=pa.float32())
        table = {"id": ids, "embedding": pa.FixedSizeListArray.from_arrays(flat, emb.shape[1])}
        table["tokens"] = pa.array(columns.pop("tokens"), type=pa.int64())
        return pa.table({**table, **columns})

    def _with_passages(self, texts: list[str]) -> dict[str, list]:
        from lam.retrieval.index import document_passages

        out: dict[str, list] = {k: [] for k in ("embedding", "tokens", "text", "passage_starts")}
        out.update({"passage_ends": [], "passage_tokens": [], "passage_vectors": []})
        for text in texts:
            vector, passages = document_passages(self.model, text)
            out["embedding"].append(vector)
            out["tokens"].append(sum(p.n_tokens for p in passages))
            out["text"].append(text)
            out["passage_starts"].append([p.start for p in passages])
            out["passage_ends"].append([p.end for p in passages])
            out["passage_tokens"].append([p.n_tokens for p in passages])
            out["passage_vectors"].append(np.stack([p.vector for p in passages]).astype(np.float16).tobytes())
        return out


def read_corpus(source: str | Path | list[str], text_field: str = "text", id_field: str = "id", glob: str = "*.txt"):
    """A Ray Dataset of ``{id, text}`` from Parquet, JSON Lines, or a folder of text files.

    Text files: one document per file, id = the path relative to the folder. Reading, decoding
    (and writing) are light next to the model, so they reserve no CPU (``num_cpus=0``): the LAM
    workers can hold every core (else, with one worker per core, the read task never starts).
    """
    ray = _ray()
    paths = [str(p) for p in source] if isinstance(source, list) else [str(source)]
    first = Path(paths[0])
    if first.is_dir() and not any(first.glob("*.parquet")) and not any(first.glob("*.jsonl")):
        root = first
        files = sorted(str(p) for p in root.rglob(glob) if p.is_file())
        if not files:
            raise FileNotFoundError(f"no {glob} files under {root}")
        ds = ray.data.read_binary_files(files, include_paths=True, num_cpus=0)

        def as_text(row: dict) -> dict:
            return {"id": str(Path(row["path"]).relative_to(root)), "text": row["bytes"].decode("utf-8")}

        return ds.map(as_text, num_cpus=0)
    if first.suffix == ".parquet" or (first.is_dir() and any(first.glob("*.parquet"))):
        ds = ray.data.read_parquet(paths, columns=[id_field, text_field], num_cpus=0)
    elif first.suffix in (".jsonl", ".json") or first.is_dir():
        lines = {"lines": True} if _json_lines_kw(ray) else {}
        ds = ray.data.read_json(paths, num_cpus=0, **lines)
        ds = ds.select_columns([id_field, text_field])
    else:
        raise ValueError(f"{first}: expected .parquet, .jsonl, or a folder of text files")
    if (id_field, text_field) != ("id", "text"):
        ds = ds.rename_columns({id_field: "id", text_field: "text"})
    return ds


def _json_lines_kw(ray) -> bool:
    import inspect

    return "lines" in inspect.signature(ray.data.read_json).parameters


def embed_corpus(
    source: str | Path | list[str],
    output: str | Path,
    *,
    model: str | None = None,
    text_field: str = "text",
    id_field: str = "id",
    workers: int | None = None,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    batch_size: int = 32,
    rows_per_call: int = 64,
    quantize: str | None = None,
    backend: str = "torch",
    output_dim: int | None = None,
    passages: bool = False,
    embedder: type[CorpusEmbedder] = CorpusEmbedder,
) -> dict[str, Any]:
    """Embed every document of ``source`` on the Ray cluster; write Parquet under ``output``.

    :param workers: LAM actors (default: the cluster's CPUs ÷ ``cpus_per_worker``, or its GPUs).
    :param rows_per_call: documents per actor call (Ray's batch); ``batch_size`` is LAM's.
    :param passages: also write the text and per-passage offsets and vectors (fp16), so
        :func:`import_corpus` can load the result into a persistent :class:`~lam.Index`.
    :returns: ``{"rows", "output", "weights_sha256"}``.
    """
    from lam import LAM

    ray = _ray()
    if passages and output_dim is not None:
        raise ValueError("passages=True writes full vectors for an index: leave output_dim unset")
    sha = LAM(model, quantize=quantize).weights_sha256  # here first: a bad model fails before the job
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} is not empty: choose a new output folder")
    if not ray.is_initialized():
        ray.init()
    if workers is None:
        resources = ray.cluster_resources()
        workers = int(resources.get("GPU", 0) // gpus_per_worker) if gpus_per_worker else 0
        workers = workers or max(1, int(resources.get("CPU", 1) // cpus_per_worker))
    ds = read_corpus(source, text_field, id_field)
    kwargs = {
        "model": model,
        "quantize": quantize,
        "backend": backend,
        "output_dim": output_dim,
        "passages": passages,
        "batch_size": batch_size,
        "threads": max(1, int(cpus_per_worker)),
        "device": "cuda" if gpus_per_worker else None,
    }
    out = ds.map_batches(
        embedder,
        fn_constructor_kwargs=kwargs,
        batch_size=rows_per_call,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker or None,
    )
    out.write_parquet(str(output), ray_remote_args={"num_cpus": 0})
    (output / "_lam.json").write_text(json.dumps({"weights_sha256": sha, "passages": passages}) + "\n")
    rows = sum(_parquet_rows(p) for p in sorted(output.glob("*.parquet")))
    return {"rows": rows, "output": str(output), "weights_sha256": sha}


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def iter_corpus_rows(output: str | Path, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The rows ``embed_corpus`` wrote, file by file, batch by batch (bounded memory)."""
    import pyarrow.parquet as pq

    for path in sorted(Path(output).glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256, columns=columns):
            yield from batch.to_pylist()


def import_corpus(output: str | Path, index: Index, batch_size: int = 256) -> int:
    """Load an ``embed_corpus(..., passages=True)`` result into ``index``; returns documents added.

    The vectors are used as they are, so they must come from the index's own model: the
    weights' sha256 recorded with the output is checked against the index's.
    """
    info_path = Path(output) / "_lam.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if not info.get("passages"):
        raise ValueError(f"{output} was written without passages=True: there is nothing to search")
    sha = info.get("weights_sha256")
    if sha is not None and sha != index.encoder.weights_sha256:
        raise ValueError(f"{output} was embedded by model {sha[:12]}, the index uses {index.encoder.weights_sha256}")
    return index.import_documents(_imported(iter_corpus_rows(output), index), batch_size=batch_size)


def _imported(rows: Iterator[dict[str, Any]], index: Index):
    from lam.retrieval.passages import Passage

    dim = index.encoder.get_sentence_embedding_dimension()
    for row in rows:
        vectors = np.frombuffer(row["passage_vectors"], dtype=np.float16).reshape(-1, dim).astype(np.float32)
        text = row["text"]
        passages = [
            Passage(k, s, e, text[s:e], n, vectors[k])
            for k, (s, e, n) in enumerate(zip(row["passage_starts"], row["passage_ends"], row["passage_tokens"]))
        ]
        yield row["id"], np.asarray(row["embedding"], dtype=np.float32), passages
