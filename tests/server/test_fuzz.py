"""Fuzzed bodies to every route of a real server process: never a 500, never a crash."""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.conftest import httpx

# JSON values, including lone surrogates (valid JSON escapes that are not valid Unicode)
TEXTS = st.text(max_size=40) | st.sampled_from(["", " ", "\ud800", "a\udfffb", "\x00", "🙂" * 5, "[SEP] [CLS]"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXTS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXTS, inner, max_size=4),
    max_leaves=12,
)
FIELDS = {
    "/v1/embeddings": ["input", "model", "dimensions", "encoding_format", "user"],
    "/v1/index": ["documents"],
    "/v1/search": ["query", "top_k"],
}
DOCUMENT = st.fixed_dictionaries({"id": JSON, "text": JSON}, optional={"metadata": JSON})


def bodies(route: str):
    fields = FIELDS[route]
    shaped = st.dictionaries(st.sampled_from(fields), JSON, max_size=len(fields))
    if route == "/v1/embeddings":
        shaped |= st.fixed_dictionaries(
            {"input": TEXTS | st.lists(TEXTS, min_size=1, max_size=6)},
            optional={"dimensions": st.integers(-5, 500), "encoding_format": st.sampled_from(["float", "base64", "x"])},
        )
    if route == "/v1/index":
        shaped |= st.fixed_dictionaries({"documents": st.lists(DOCUMENT, min_size=1, max_size=3)})
    return shaped | JSON


ALLOWED = {200, 400, 404, 413, 422}


def _post(client: httpx.Client, route: str, body) -> httpx.Response:
    raw = json.dumps(body).encode()  # ensure_ascii: lone surrogates travel as \ud800 escapes
    return client.post(route, content=raw, headers={"Content-Type": "application/json"})


def _check(answer: httpx.Response) -> None:
    assert answer.status_code in ALLOWED, answer.text
    if answer.status_code != 200:
        assert "error" in answer.json()


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=bodies("/v1/embeddings"))
def test_fuzz_embeddings(server, body):
    with server.client() as client:
        _check(_post(client, "/v1/embeddings", body))


@FUZZ
@given(body=bodies("/v1/index"))
def test_fuzz_index(server, body):
    with server.client() as client:
        _check(_post(client, "/v1/index", body))


@FUZZ
@given(body=bodies("/v1/search"))
def test_fuzz_search(server, body):
    with server.client() as client:
        _check(_post(client, "/v1/search", body))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc_id=TEXTS | st.sampled_from(["0/", "a/b", "/", "..", "%2F", "a?b#c"]))
def test_fuzz_delete(server, doc_id):
    path = "/v1/documents/" + quote(doc_id.encode("utf-8", "surrogatepass"), safe="")
    with server.client() as client:
        answer = client.delete(path)
    # not indexed, or not a valid id; or indexed by the index fuzz, which may draw the same id
    assert answer.status_code in (200, 404, 405, 422), answer.text
    if answer.status_code == 200:
        assert answer.json()["deleted"] == doc_id


def test_server_still_alive_after_fuzzing(server):
    assert server.process.poll() is None
    assert server.client().get("/health").json()["status"] == "ok"
