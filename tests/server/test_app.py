"""``lam serve`` as a real process on 127.0.0.1: the OpenAI format, the index routes, limits,
auth and metrics."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.server.conftest import API_KEY, MAX_BYTES, MAX_ITEMS, httpx


def _vectors(answer: dict) -> np.ndarray:
    return np.array([d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])], dtype=np.float32)


def test_health_needs_no_key(server):
    answer = server.client(key=None).get("/health").json()
    assert answer["status"] == "ok" and answer["dimensions"] == 384 and answer["index"] is True


def test_embeddings_match_encode(server, shipped_lam):
    texts = ["The cat sat on the mat.", "A dog ran fast.", ""]
    answer = server.client().post("/v1/embeddings", json={"input": texts, "model": "anything"}).json()
    assert answer["object"] == "list" and answer["model"].startswith("lam-")
    assert [d["index"] for d in answer["data"]] == [0, 1, 2]
    np.testing.assert_allclose(_vectors(answer), shipped_lam.encode(texts), atol=1e-5)
    tokens = sum(shipped_lam.count_tokens(t) for t in texts)
    assert answer["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}

    one = server.client().post("/v1/embeddings", json={"input": texts[0]}).json()
    assert len(one["data"]) == 1
    np.testing.assert_allclose(_vectors(one)[0], shipped_lam.encode(texts[0]), atol=1e-5)


def test_dimensions_and_base64(server, shipped_lam):
    text = "Matryoshka embeddings keep their first dimensions."
    short = server.client().post("/v1/embeddings", json={"input": [text], "dimensions": 64}).json()
    vec = _vectors(short)[0]
    assert vec.shape == (64,) and abs(np.linalg.norm(vec) - 1) < 1e-5
    np.testing.assert_allclose(vec, shipped_lam.encode(text, output_dim=64), atol=1e-5)

    packed = server.client().post("/v1/embeddings", json={"input": [text], "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, shipped_lam.encode(text), atol=1e-5)


def test_concurrent_requests_each_get_their_own_answer(server, shipped_lam):
    texts = [f"Request number {i} is about {w}." for i, w in enumerate(["cats", "rockets", "tea", "law"] * 6)]
    with ThreadPoolExecutor(12) as pool, server.client() as client:
        answers = list(pool.map(lambda t: client.post("/v1/embeddings", json={"input": t}).json(), texts))
    np.testing.assert_allclose(np.concatenate([_vectors(a) for a in answers]), shipped_lam.encode(texts), atol=1e-5)


@pytest.mark.parametrize(
    "body",
    [
        {"input": 3},
        {"input": [1, 2, 3]},
        {"input": ["ok", None]},
        {"input": []},
        {},
        {"input": "x", "dimensions": 0},
        {"input": "x", "dimensions": 385},
        {"input": "x", "dimensions": "64"},
        {"input": "x", "encoding_format": "hex"},
        [1, 2],
    ],
)
def test_wrong_types_answer_422(server, body):
    answer = server.client().post("/v1/embeddings", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_invalid_json_is_a_client_error(server):
    for raw in (b"{not json", b"\xff\xfe\x00", b""):
        answer = server.client().post("/v1/embeddings", content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code in (400, 422), (raw, answer.text)  # malformed JSON: a client error, never 500
        assert "error" in answer.json()


def test_oversize_requests_answer_413(server):
    too_many = server.client().post("/v1/embeddings", json={"input": ["x"] * (MAX_ITEMS + 1)})
    assert too_many.status_code == 413 and "limit" in too_many.json()["error"]["message"]
    too_big = server.client().post("/v1/embeddings", json={"input": "word " * MAX_BYTES})
    assert too_big.status_code == 413

    def chunks():  # no Content-Length: the limit must hold while reading
        yield b'{"input": "'
        for _ in range(MAX_BYTES // 1000 + 2):
            yield b"a" * 1000
        yield b'"}'

    chunked = server.client().post("/v1/embeddings", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert server.client().get("/health").status_code == 200


def test_api_key(server):
    body = {"input": "secret stuff"}
    assert server.client(key=None).post("/v1/embeddings", json=body).status_code == 401
    wrong = server.client(key="wrong").post("/v1/embeddings", json=body)
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert server.client(key=None).get("/metrics").status_code == 401
    with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}) as client:
        assert client.post("/v1/embeddings", json=body).status_code == 200


def test_index_search_delete(server):
    client = server.client()
    docs = [
        {"id": "garden", "text": "Tomatoes need full sun and regular watering. " * 30, "metadata": {"kind": "howto"}},
        {"id": "space", "text": "Rockets burn fuel. " * 80 + "The probe reached Titan in 2004. " + "Orbits. " * 40},
    ]
    indexed = client.post("/v1/index", json={"documents": docs}).json()
    assert indexed["indexed"] == 2 and indexed["documents"] >= 2
    hits = client.post("/v1/search", json={"query": "When did the probe reach Titan?", "top_k": 2}).json()["data"]
    best = hits[0]
    assert best["doc_id"] == "space" and "Titan" in best["passage"]
    assert docs[1]["text"][best["start"] : best["end"]] == best["passage"]
    many = client.post("/v1/search", json={"query": ["tomatoes sun", "rockets"], "top_k": 1}).json()["data"]
    assert [h[0]["doc_id"] for h in many] == ["garden", "space"] and many[0][0]["metadata"] == {"kind": "howto"}

    assert client.delete("/v1/documents/garden").json()["deleted"] == "garden"
    client.post(
        "/v1/index", json={"documents": [{"id": "docs/a b.txt", "text": "a path as an id"}, {"id": "x/", "text": "y"}]}
    )
    assert client.delete("/v1/documents/docs%2Fa%20b.txt").json()["deleted"] == "docs/a b.txt"  # ids may hold "/"
    assert client.delete("/v1/documents/x/").json()["deleted"] == "x/"
    gone = client.delete("/v1/documents/garden")
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found_error"
    duplicate = client.post("/v1/index", json={"documents": [docs[1], docs[1]]})
    assert duplicate.status_code == 422 and "duplicate" in duplicate.json()["error"]["message"]
    empty = client.post("/v1/index", json={"documents": [{"id": "e", "text": "  "}]})
    assert empty.status_code == 422
    after = client.post("/v1/search", json={"query": "tomatoes", "top_k": 5}).json()["data"]
    assert "garden" not in [h["doc_id"] for h in after]


def test_metrics_count_requests(server):
    client = server.client()
    before = client.get("/metrics").json()
    client.post("/v1/embeddings", json={"input": "count me"})
    client.post("/v1/embeddings", json={"input": 5})
    after = client.get("/metrics").json()
    route = after["requests"]["POST /v1/embeddings"]
    old = before["requests"].get("POST /v1/embeddings", {})
    assert route.get("200", 0) == old.get("200", 0) + 1 and route.get("422", 0) == old.get("422", 0) + 1
    assert after["latency_ms"]["POST /v1/embeddings"]["p95"] > 0
    assert after["queue_depth"] >= 0 and after["batches"] >= 1


def test_key_never_logged(server):
    server.client().post("/v1/embeddings", json={"input": "log check"})
    server.client(key="wrong-key-zzz").post("/v1/embeddings", json={"input": "x"})
    log = server.log.read_text()
    assert "POST /v1/embeddings" in log  # the access log is on, so requests are logged…
    assert API_KEY not in log and "wrong-key-zzz" not in log  # …but never their keys


def test_503_when_the_queue_is_full(shipped_lam):
    """In process, with the model held: the queue fills, the next request gets 503 at once."""
    from fastapi.testclient import TestClient

    from lam.server import ServerLimits, create_app

    gate, entered = threading.Event(), threading.Event()

    class HeldModel:
        def __getattr__(self, name):
            return getattr(shipped_lam, name)

        def encode(self, *args, **kwargs):
            entered.set()
            gate.wait(30)
            return shipped_lam.encode(*args, **kwargs)

    app = create_app(HeldModel(), limits=ServerLimits(max_queue=1, max_batch_texts=1, max_wait_ms=0))
    with TestClient(app, base_url="http://localhost") as client, ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/v1/embeddings", json={"input": "first"})
        assert entered.wait(30)
        queued = pool.submit(client.post, "/v1/embeddings", json={"input": "second"})
        batcher = app.state.batcher
        for _ in range(1000):
            if batcher.depth == 2:
                break
            threading.Event().wait(0.01)
        busy = client.post("/v1/embeddings", json={"input": "third"})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["type"] == "server_busy"
        gate.set()
        assert running.result().status_code == 200 and queued.result().status_code == 200
        assert client.post("/v1/embeddings", json={"input": "fourth"}).status_code == 200
