"""Every request is bounded: tokens, results, answer size; long work takes turns with short
requests and stops when its client leaves; an error keeps the connection; Host is checked."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from lam.retrieval import Index
from lam.server import ServerLimits, create_app
from lam.server.app import TURN_TOKENS
from lam.server.process import free_port
from tests.conftest import generated_prose

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")


def _client(app, host: str = "localhost") -> TestClient:
    return TestClient(app, base_url=f"http://{host}:8000")


def test_a_body_under_the_byte_limit_but_over_the_token_limit_is_413(shipped_lam):
    with _client(create_app(shipped_lam)) as client:
        punctuation = client.post("/v1/embeddings", json={"input": "!" * 1_000_000})  # 1 MB, 1M tokens
        assert punctuation.status_code == 413, punctuation.text
        assert "tokens" in punctuation.json()["error"]["message"]
        assert client.post("/v1/embeddings", json={"input": "a few words"}).status_code == 200
    small = create_app(shipped_lam, Index(":memory:", shipped_lam), limits=ServerLimits(max_tokens=50))
    with _client(small) as client:
        assert client.post("/v1/embeddings", json={"input": ["word " * 30, "word " * 30]}).status_code == 413
        assert client.post("/v1/search", json={"query": "word " * 60}).status_code == 413
        many = client.post("/v1/index", json={"documents": [{"id": "a", "text": "word " * 60}]})
        assert many.status_code == 413 and client.post("/v1/search", json={"query": "word"}).json()["data"] == []


def test_queries_times_top_k_and_the_answer_size_are_bounded(shipped_lam):
    index = Index(":memory:", shipped_lam)
    index.index_many({f"d{i}": f"Note {i} about the lamp in the tower." for i in range(5)}, show_progress_bar=False)
    with _client(create_app(shipped_lam, index)) as client:
        flood = client.post("/v1/search", json={"query": ["x"] * 2048, "top_k": 1000})  # once a 245 MB answer
        assert flood.status_code == 413 and "top_k" in flood.json()["error"]["message"]
        assert len(client.post("/v1/search", json={"query": ["lamp"] * 3, "top_k": 5}).json()["data"]) == 3
    tiny = create_app(shipped_lam, limits=ServerLimits(max_response_bytes=5_000))
    with _client(tiny) as client:
        big = client.post("/v1/embeddings", json={"input": ["one", "two", "three"]})
        assert big.status_code == 413 and big.json()["error"]["type"] == "response_too_large"
        assert client.post("/v1/embeddings", json={"input": "one", "dimensions": 32}).status_code == 200


def test_a_short_request_is_answered_while_a_long_one_takes_turns(shipped_lam):
    long_text = generated_prose(20_000, seed=3)  # many turns of TURN_TOKENS
    app = create_app(shipped_lam)
    finished: list[str] = []

    def post(client, name: str, text: str):
        answer = client.post("/v1/embeddings", json={"input": text})
        finished.append(name)
        return answer

    with _client(app) as client, ThreadPoolExecutor(2) as pool:
        long = pool.submit(post, client, "long", long_text)
        for _ in range(3000):  # until the long text's first piece is running
            if app.state.batcher.calls >= 1:
                break
            time.sleep(0.01)
        short = pool.submit(post, client, "short", "a short question")
        assert short.result().status_code == 200 and long.result().status_code == 200
    assert finished == ["short", "long"]  # once: the short one waited for the whole long text
    streamed = np.array(long.result().json()["data"][0]["embedding"])
    np.testing.assert_allclose(streamed, shipped_lam.encode(long_text), atol=2e-5)  # turns change nothing


class _Failing:
    """The shipped model, except that encoding "boom" is a bug (an unexpected exception)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, *args, **kwargs):
        if "boom" in texts:
            raise RuntimeError("a bug")
        return self.inner.encode(texts, *args, **kwargs)


class _Uvicorn:
    """A real HTTP server on a thread, for what TestClient cannot show (connections, disconnects)."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(1000):
            if self.server.started:
                return f"http://127.0.0.1:{self.port}"
            time.sleep(0.01)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def test_the_connection_stays_open_after_a_500(shipped_lam):
    with _Uvicorn(create_app(_Failing(shipped_lam))) as url, httpx.Client(base_url=url, timeout=60) as client:
        before = client.post("/v1/embeddings", json={"input": "fine"})
        bug = client.post("/v1/embeddings", json={"input": "boom"})
        assert bug.status_code == 500 and bug.json()["error"]["type"] == "server_error"
        assert bug.headers.get("connection") != "close"
        after = client.post("/v1/embeddings", json={"input": "fine again"})
        assert after.status_code == 200
        same = [r.extensions["network_stream"].get_extra_info("client_addr") for r in (before, bug, after)]
        assert same[0] == same[1] == same[2]  # one keep-alive connection throughout


def test_work_stops_when_the_client_goes_away(shipped_lam):
    app = create_app(shipped_lam)
    text = generated_prose(40_000, seed=5)
    with _Uvicorn(app) as url:
        with pytest.raises(httpx.ReadTimeout), httpx.Client(base_url=url, timeout=1.5) as client:
            client.post("/v1/embeddings", json={"input": text})
        for _ in range(300):
            if app.state.abandoned:
                break
            time.sleep(0.05)
        assert app.state.abandoned == 1
        time.sleep(1.5)  # the turn running when the client left may finish; no other starts
        turns = app.state.batcher.calls
        time.sleep(1.5)
        assert app.state.batcher.calls == turns and app.state.batcher.depth == 0
        needed = shipped_lam.count_tokens(text) // TURN_TOKENS
        assert turns < needed / 2  # far fewer turns than the whole text needs
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.post("/v1/embeddings", json={"input": "still serving"}).status_code == 200


def test_without_a_key_only_allowed_host_names_are_served(shipped_lam):
    with _client(create_app(shipped_lam), host="evil.example") as client:  # a DNS-rebinding page
        refused = client.post("/v1/embeddings", json={"input": "x"})
        assert refused.status_code == 400 and "Host" in refused.json()["error"]["message"]
        assert client.get("/health").status_code == 400
    for host in ("localhost", "127.0.0.1", "[::1]"):
        with _client(create_app(shipped_lam), host=host) as client:
            assert client.get("/health").status_code == 200, host
    with _client(create_app(shipped_lam, allowed_hosts=["lam.internal"]), host="lam.internal") as client:
        assert client.get("/health").status_code == 200
    with _client(create_app(shipped_lam, api_key="k"), host="evil.example") as client:  # the key protects
        assert client.get("/health").status_code == 200
        assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 401


def test_listening_beyond_loopback_without_a_key_is_a_loud_warning(tmp_path, monkeypatch):
    from lam.cli.main import cli

    monkeypatch.delenv("LAM_API_KEY", raising=False)
    missing = str(tmp_path / "no-model")
    exposed = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--model", missing])
    assert "WARNING" in exposed.output and "without an API key" in exposed.output
    local = CliRunner().invoke(cli, ["serve", "--host", "127.0.0.1", "--model", missing])
    keyed = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--model", missing], env={"LAM_API_KEY": "k"})
    assert "WARNING" not in local.output and "WARNING" not in keyed.output


def test_an_index_request_written_in_turns_is_still_checked_whole_first(shipped_lam):
    index = Index(":memory:", shipped_lam)
    docs = [{"id": f"d{i}", "text": f"Note {i} about the harbour."} for i in range(index.batch_size + 1)]
    docs[-1]["id"] = "d0"  # a duplicate in the second turn's batch
    with _client(create_app(shipped_lam, index)) as client:
        refused = client.post("/v1/index", json={"documents": docs})
        assert refused.status_code == 422 and "duplicate" in refused.json()["error"]["message"]
        assert len(index) == 0  # the first batch was not written either
