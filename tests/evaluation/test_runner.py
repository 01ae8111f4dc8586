"""The harness reproduces MTEB's published teacher figures, and its baselines behave."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from lam import LAM
from lam.cli.main import cli
from lam.evaluation.report import write_report
from lam.evaluation.runner import run_evaluation, score_retrieval
from lam.evaluation.synthetic import passkey_split
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "stsb").exists(), reason="needs ../shared/data")
pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def teacher_record():
    """STS-B test and passkey/needle at two lengths (50 documents each): sized to what the tests check."""
    return run_evaluation(
        suites=("sts", "longembed"),
        encoders=("teacher",),
        sts_sets=("stsb-test",),
        lengths=(256, 4096),
        n_docs=50,
        progress=False,
    )


def test_teacher_stsb_is_mtebs_figure(teacher_record):
    assert teacher_record["results"]["teacher"]["sts"]["stsb-test"] == pytest.approx(82.03, abs=0.05)


def test_teacher_passkey_fails_beyond_its_window(teacher_record):
    """LongEmbed's figures for all-MiniLM-L6-v2: most passkeys found at 256 tokens, few at 4K
    (the teacher reads the first 256 tokens only)."""
    passkey = teacher_record["results"]["teacher"]["passkey"]["per_length"]
    assert passkey["256"]["ndcg_at_1"] >= 60 and passkey["4096"]["ndcg_at_1"] <= 30


def test_report_files(teacher_record, tmp_path):
    paths = write_report(teacher_record, tmp_path, "r")
    assert json.loads(paths["json"].read_text())["results"]["teacher"]["sts"]["stsb-test"] > 80
    assert "| teacher |" in paths["markdown"].read_text()
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_bm25_finds_passkeys():
    pytest.importorskip("bm25s")
    from lam.evaluation.encoders import BM25

    assert score_retrieval(BM25(), passkey_split(1024))["ndcg_at_1"] >= 90


def test_chunk_mean_equals_teacher_on_one_chunk_and_averages_chunks():
    from lam.evaluation.encoders import TeacherChunkMean, TeacherEncoder

    chunked, teacher = TeacherChunkMean(), TeacherEncoder()
    short = ["A man plays a guitar.", "The weather is nice today."]
    np.testing.assert_allclose(chunked.embed(short, "document"), teacher.embed(short, "document"), atol=1e-5)
    tok = teacher.model.tokenizer
    ids = tok("word " * 600, add_special_tokens=False)["input_ids"]
    parts = [tok.decode(ids[i : i + 254]) for i in range(0, len(ids), 254)]
    expected = teacher.embed(parts, "document").sum(0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(chunked.embed(["word " * 600], "document")[0], expected, atol=1e-4)


def test_lam_eval_command(tmp_path):
    pytest.importorskip("bm25s")
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            "--suite",
            "longembed",
            "--encoder",
            "bm25",
            "--lengths",
            "256,512",
            "--docs",
            "10",
            "--out",
            str(tmp_path),
            "--name",
            "t",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "t.json").read_text())
    assert set(record["results"]["bm25"]["passkey"]["per_length"]) == {"256", "512"}
    assert record["run"]["n_docs"] == 10
    bad = CliRunner().invoke(cli, ["eval", "--lengths", "300"])
    assert bad.exit_code == 2


def test_lam_eval_fusion_weights_reach_the_search_engine(tmp_path):
    args = ["eval", "--suite", "longembed", "--encoder", "lam-search", "--lengths", "256", "--docs", "4"]
    args += ["--out", str(tmp_path), "--name", "w", "--no-progress"]
    result = CliRunner().invoke(cli, [*args, "--fusion-weights", "1,0,0.5,0"])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "w.json").read_text())["encoders"]["lam-search"]
    assert (info["passage"], info["document"], info["lexical"], info["document_lexical"]) == (1, 0, 0.5, 0)
    assert info["weights_sha256"] == LAM().weights_sha256  # the record names the weights it measured
    assert info["pooling"] == LAM().config.pooling  # and how they pool (acceptance parts key on both)
    bad = CliRunner().invoke(cli, [*args, "--fusion-weights", "1,0,0.5"])
    assert bad.exit_code == 2 and "--fusion-weights" in bad.output


def test_dense_score_reuses_the_corpus_embeddings_only_for_the_same_corpus():
    from lam.evaluation.encoders import DenseEncoder

    class Counting(DenseEncoder):
        name, info, calls = "counting", {}, []

        def embed(self, texts, kind):
            self.calls.append(kind)
            return np.eye(len(texts), 4)[:, :4] if kind == "document" else np.ones((len(texts), 4))

    enc = Counting()
    enc.score(["q"], ["a", "b"])
    enc.score(["q2"], ["a", "b"])
    assert enc.calls.count("document") == 1
    enc.score(["q"], ["a", "c"])
    assert enc.calls.count("document") == 2


def test_memory_ablation_encoders_read_one_state(tmp_path):
    import torch

    from lam.evaluation.runner import make_encoder
    from tests.conftest import shipped_weights

    model = shipped_weights(memory=True)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.attention.memory.read_gate.fill_(1.0)
    model.save_pretrained(tmp_path / "open")
    H = model.config.num_heads
    for name, read, closed in (
        ("lam-fast-only", slice(0, H), slice(H, None)),
        ("lam-slow-only", slice(H, None), slice(0, H)),
    ):
        encoder = make_encoder(name, str(tmp_path / "open"))
        assert encoder.name == name and encoder.info["reads"] == name.split("-")[1]
        for layer in encoder.model.model.layers:
            gates = layer.attention.memory.read_gate
            assert bool((gates[read] == 1).all()) and bool((gates[closed] == 0).all())
    off = make_encoder("lam-memory-off", str(tmp_path / "open"))
    assert off.info["reads"] == "none" and not off.model.model.memory_is_read()
    from lam.evaluation.encoders import LAMEncoder
    from tests.conftest import make_tiny_lam

    make_tiny_lam(memory=False).save_pretrained(tmp_path / "no-memory")
    with pytest.raises(ValueError, match="memory"):
        LAMEncoder(str(tmp_path / "no-memory"), reads="fast")
    # a model without memory is its own memory-off ablation (``lam eval``'s default encoders)
    off = make_encoder("lam-memory-off", str(tmp_path / "no-memory"))
    lam = make_encoder("lam", str(tmp_path / "no-memory"))
    assert off.info["reads"] == "none" and off.info["memory"] is False
    texts = ["the cat sat on the mat . " * 9, "a dog ran fast"]
    assert np.allclose(off.embed(texts, "document"), lam.embed(texts, "document"), atol=1e-6)


def test_memory_off_of_a_model_without_memory_reuses_lams_scores(tmp_path, monkeypatch):
    from lam.evaluation.encoders import LAMEncoder
    from tests.conftest import make_tiny_lam

    calls = []
    embed = LAMEncoder.embed

    def counted(self, texts, kind):
        calls.append(self.name)
        return embed(self, texts, kind)

    monkeypatch.setattr(LAMEncoder, "embed", counted)
    for memory in (False, True):
        make_tiny_lam(memory=memory).save_pretrained(tmp_path / str(memory))
        calls.clear()
        record = run_evaluation(
            suites=("sts",),
            encoders=("lam", "lam-memory-off"),
            model_path=str(tmp_path / str(memory)),
            sts_sets=("stsb-test",),
            progress=False,
        )
        off = record["encoders"]["lam-memory-off"]
        if memory:  # a real ablation: measured
            assert calls == ["lam"] * 2 + ["lam-memory-off"] * 2 and "scores_of" not in off
        else:  # the same model: scored once, reported under both names
            assert calls == ["lam"] * 2 and off["scores_of"] == "lam"
            assert record["results"]["lam-memory-off"] == record["results"]["lam"]


def test_fidelity_texts_fill_the_teachers_512_positions():
    from lam import LAM
    from lam.distill.data import long_documents
    from lam.evaluation.datasets import load_fidelity_texts

    texts = load_fidelity_texts(n_texts=8)
    assert texts == load_fidelity_texts(n_texts=8)  # fixed seed
    counts = [LAM().count_tokens(t) for t in texts]
    assert len(texts) == 8 and all(500 <= n <= 510 for n in counts), counts
    first_held_out = next(long_documents("heldout"))[1]
    assert all(t in first_held_out for t in texts)  # held-out text, never a training document


def test_fidelity_scores_the_full_attention_teacher_as_one_and_truncation_below(tmp_path):
    from lam.evaluation.datasets import load_fidelity_texts
    from lam.evaluation.encoders import DenseEncoder, TeacherEncoder
    from lam.evaluation.runner import FullAttentionTeacher, make_encoder, score_fidelity

    texts = load_fidelity_texts(n_texts=8)
    full = FullAttentionTeacher()

    class Full(DenseEncoder):
        name, info = "full", {}

        def embed(self, texts, kind):
            return full.embed(texts)

    assert score_fidelity(Full(), texts, full)["mean_cosine"] > 0.99999
    truncated = score_fidelity(TeacherEncoder(), texts, full)["mean_cosine"]
    assert truncated < 0.95
    # the trained memory carries the first segment into the second: closer to 510-token attention
    # than truncation, and than two windows averaged (the bundled model)
    from tests.conftest import shipped_weights

    shipped_weights(memory=True, pooling="segment-idf").save_pretrained(tmp_path / "memory")
    memory = score_fidelity(make_encoder("lam", str(tmp_path / "memory")), texts, full)["mean_cosine"]
    windows = score_fidelity(make_encoder("lam"), texts, full)["mean_cosine"]
    assert memory > truncated and memory > windows


def test_the_bundled_model_is_the_teacher_chunk_mean_with_repeats_gated_and_its_memory_is_not():
    """Under ``"segment-mean"`` the bundled weights (memory off) compute teacher chunk-mean's vector
    of a long text whose last chunk is at least half a segment (then both cut the same 254-token
    chunks, the teacher's attention in each); the bundled
    ``"gated-segment-mean"`` is those chunk vectors under the redundancy gate, which on a text
    that keeps repeating itself moves away from chunk-mean; the trained memory read does not."""
    import torch

    from lam.evaluation.encoders import TeacherChunkMean
    from lam.layers import redundancy_weight
    from lam.runner import pooled_sums
    from tests.conftest import shipped_weights

    shipped = LAM()
    assert shipped.config.pooling == "gated-segment-mean" and not shipped.config.memory
    text = " ".join(f"Line {i}: the committee discussed item {i % 7} of the budget." for i in range(120))
    n = shipped.count_tokens(text)
    assert n > 3 * 254 and n % 254 >= 127  # no sliver at the end: LAM cuts the chunks chunk-mean cuts
    chunk_mean = TeacherChunkMean().embed([text], "document")[0]
    plain = shipped_weights(pooling="segment-mean").encode([text])[0]
    assert float(plain @ chunk_mean) > 0.99999  # LAM's weights are stored in fp16, the teacher's in fp32

    units = []  # the bundled model's unit segment vectors, gated by hand
    with torch.inference_mode():
        pooled_sums(
            shipped.model,
            shipped.segmenter,
            [shipped.segmenter.text_segments(text)],
            on_step=lambda rows, sums, counts: units.extend(
                torch.nn.functional.normalize(sums / counts[:, None], dim=-1)
            ),
        )
    seen, total, weight = torch.zeros_like(units[0]), torch.zeros_like(units[0]), 0.0
    for u in units:
        w = float(redundancy_weight(u[None], seen[None])[0])
        total, weight, seen = total + w * u, weight + w, seen + u
    gated = shipped.encode([text])[0]
    np.testing.assert_allclose(gated, torch.nn.functional.normalize(total / weight, dim=0).numpy(), atol=1e-5)
    assert weight < len(units) - 1 and float(gated @ chunk_mean) < 0.9999  # the repeats were gated
    assert float(shipped_weights(memory=True).encode([text])[0] @ chunk_mean) < 0.999
