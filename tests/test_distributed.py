"""lam.distributed on a local Ray cluster started here (2 CPUs): embeddings equal `encode`,
a killed worker is retried with no row lost or duplicated, and the result imports into an
index that searches like one built locally."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from lam.distributed import CorpusEmbedder, embed_corpus, import_corpus, iter_corpus_rows  # noqa: E402

WORDS = "river stone garden rocket budget meeting contract orbit violin harvest lantern".split()


def _documents(n: int = 14) -> dict[str, str]:
    rng = np.random.default_rng(0)
    docs = {}
    for i in range(n):
        length = [5, 40, 700][i % 3]  # short, medium, and several segments long
        docs[f"doc-{i}"] = " ".join(rng.choice(WORDS, size=length)) + f" The code word is {WORDS[i % len(WORDS)]}{i}."
    return docs


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[str, dict[str, str]]:
    docs = _documents()
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in docs.items()))
    return str(path), docs


def _rows(output) -> dict[str, dict]:
    rows = list(iter_corpus_rows(output))
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a row was duplicated"
    return {r["id"]: r for r in rows}


def test_embeddings_equal_single_process_encode(cluster, corpus, tmp_path, shipped_lam):
    path, docs = corpus
    result = embed_corpus(path, tmp_path / "out", workers=2, rows_per_call=4)
    rows = _rows(tmp_path / "out")
    assert result["rows"] == len(docs) and set(rows) == set(docs)
    ids = sorted(docs)
    got = np.stack([np.asarray(rows[i]["embedding"], dtype=np.float32) for i in ids])
    np.testing.assert_allclose(got, shipped_lam.encode([docs[i] for i in ids]), atol=1e-5)
    assert [rows[i]["tokens"] for i in ids] == [shipped_lam.count_tokens(docs[i]) for i in ids]
    assert result["weights_sha256"] == shipped_lam.weights_sha256


def test_parquet_with_other_field_names_and_a_folder_of_files(cluster, tmp_path, shipped_lam):
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = _documents(5)
    pq.write_table(pa.table({"key": list(docs), "body": list(docs.values())}), tmp_path / "c.parquet")
    embed_corpus(tmp_path / "c.parquet", tmp_path / "out1", text_field="body", id_field="key", workers=1)
    assert set(_rows(tmp_path / "out1")) == set(docs)

    folder = tmp_path / "files"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(docs["doc-0"])
    (folder / "sub" / "b.txt").write_text(docs["doc-2"])
    embed_corpus(folder, tmp_path / "out2", workers=1)
    rows = _rows(tmp_path / "out2")
    assert set(rows) == {"a.txt", "sub/b.txt"}
    np.testing.assert_allclose(rows["sub/b.txt"]["embedding"], shipped_lam.encode(docs["doc-2"]), atol=1e-5)


def test_a_killed_worker_is_retried_and_no_row_is_lost_or_duplicated(cluster, corpus, tmp_path, shipped_lam):
    path, docs = corpus
    marker = tmp_path / "killed-once"

    class DiesOnce(CorpusEmbedder):  # local class: Ray pickles it by value
        def __call__(self, batch):
            if "doc-7" in list(batch["id"]) and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)  # the process dies mid-batch, as under kill -9
            return super().__call__(batch)

    embed_corpus(path, tmp_path / "out", workers=2, rows_per_call=3, embedder=DiesOnce)
    assert marker.exists(), "the worker was never killed: the test did not test anything"
    rows = _rows(tmp_path / "out")
    assert set(rows) == set(docs)
    got = np.stack([np.asarray(rows[i]["embedding"], dtype=np.float32) for i in sorted(docs)])
    np.testing.assert_allclose(got, shipped_lam.encode([docs[i] for i in sorted(docs)]), atol=1e-5)


def test_import_corpus_searches_like_a_local_index(cluster, corpus, tmp_path, shipped_lam):
    from lam import Index

    path, docs = corpus
    embed_corpus(path, tmp_path / "out", workers=2, passages=True)
    imported, local = Index(tmp_path / "imported.lam", shipped_lam), Index(tmp_path / "local.lam", shipped_lam)
    assert import_corpus(tmp_path / "out", imported) == len(docs)
    local.index_many(docs.items(), show_progress_bar=False)
    assert imported.stats()["passages"] == local.stats()["passages"]
    for query in ("The code word is orbit7", "harvest lantern violin", "budget meeting"):
        a, b = imported.search(query, top_k=5), local.search(query, top_k=5)
        assert [(h.doc_id, h.start, h.end) for h in a] == [(h.doc_id, h.start, h.end) for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-3)
    with pytest.raises(ValueError, match="passages=True"):
        embed_corpus(path, tmp_path / "plain", workers=1)
        import_corpus(tmp_path / "plain", imported)


def test_bad_arguments(cluster, corpus, tmp_path):
    path, _ = corpus
    with pytest.raises(ValueError, match="output_dim"):
        embed_corpus(path, tmp_path / "o", passages=True, output_dim=64)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        embed_corpus(path, tmp_path / "full")
    with pytest.raises(ValueError, match="expected"):
        embed_corpus(tmp_path / "full" / "x", tmp_path / "o2")


def test_output_is_plain_parquet(cluster, corpus, tmp_path):
    """Readable without Ray's extension types: embedding is fixed_size_list<float32>[384]."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, _ = corpus
    embed_corpus(path, tmp_path / "out", workers=1)
    schema = pq.read_schema(next((tmp_path / "out").glob("*.parquet")))
    assert schema.field("embedding").type == pa.list_(pa.float32(), 384)
    assert schema.field("tokens").type == pa.int64() and schema.field("id").type == pa.string()
