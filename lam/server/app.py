"""The HTTP API: ``create_app(model, ...)`` → a FastAPI app; ``lam serve`` runs it with uvicorn.

Routes (JSON in, JSON out; every error is ``{"error": {"message", "type", "code"}}``):

* ``POST /v1/embeddings`` — OpenAI's embeddings API, micro-batched (:mod:`lam.server.batching`);
* ``POST /v1/index``, ``POST /v1/search``, ``DELETE /v1/documents/{doc_id}`` — the persistent
  index (:class:`lam.Index`), when the server was started with one;
* ``GET /health`` (no key needed) and ``GET /metrics`` (counts, latencies, queue depth).

Every request is bounded before the model sees it (:class:`ServerLimits`): bytes, items,
tokens, and for search queries × top_k; an answer over ``max_response_bytes`` is refused, not
sent. The model runs on one worker thread, and long work takes turns with short requests
(:mod:`lam.server.batching`): a text over ``TURN_TOKENS`` is fed to the model a piece per turn,
a search runs a query per turn, indexing a batch of documents per turn. When the client goes
away, the request's remaining turns are dropped.

Statuses: 400 for a ``Host`` that is not allowed (no API key set), 401 without the API key
(when one is set), 413 over a limit, 422 for a body of the wrong shape or type, 503 when the
queue is full or the index file is locked, 404 for unknown documents or when there is no
index, 499 (logged only) when the client went away first.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
from collections.abc import Awaitable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from lam.errors import LAMError, LAMIndexError
from lam.heap import release_free_memory
from lam.retrieval.index import check_documents
from lam.server.batching import MicroBatcher, QueueFullError
from lam.server.guards import (
    LOOPBACK_HOSTS,
    APIError,
    BodyLimitMiddleware,
    CatchAllMiddleware,
    HostCheckMiddleware,
    error_response,
)
from lam.server.metrics import Metrics, MetricsMiddleware
from lam.server.schemas import EmbeddingsRequest, IndexRequest, SearchRequest
from lam.tokenization import check_unicode

if TYPE_CHECKING:
    from lam.encoder import LAM
    from lam.retrieval.index import Index

logger = logging.getLogger(__name__)
TRIM_EVERY = 32  # model calls between malloc_trim calls
TURN_TOKENS = 1024  # about this much model work per turn (~0.25 s here): a longer text is fed in pieces this long
DISCONNECT_POLL_S = 0.1  # how often a running request checks that its client is still there
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """What one request may ask, and how much work may wait."""

    max_items: int = 2048  # inputs per /v1/embeddings call, documents per /v1/index, queries per /v1/search
    max_bytes: int = 1 << 20  # request body
    max_tokens: int = 1 << 18  # tokens per request (all its texts): 262,144 ≈ 40 s of this CPU's time
    max_results: int = 10_000  # queries × top_k per /v1/search
    max_response_bytes: int = 32 << 20  # an answer larger than this is refused (413), not sent
    max_batch_texts: int = 64  # texts per model call when requests are batched together
    max_wait_ms: float = 2.0  # how long a batch waits for more requests
    max_queue: int = 256  # requests waiting before 503


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


def _token_counts(model: LAM, texts: list[str], limit: int | None = None) -> list[int]:
    """Tokens per text as the model reads them (without [CLS]/[SEP]); short texts in one call.

    With ``limit``, counting stops once the total is over it (the counts then sum past the
    limit, and the last may be partial): refusing a huge text costs no more than the limit."""
    segmenter = model.segmenter
    short = [t for t in texts if len(t) <= segmenter.piece_chars]
    short_counts = iter([len(ids) for ids in segmenter.body_ids_batch(short)] if short else [])
    counts: list[int] = []
    total = 0
    for text in texts:
        if len(text) <= segmenter.piece_chars:
            counts.append(next(short_counts))
        else:
            counts.append(0)
            for ids in segmenter.iter_body_ids(text):
                counts[-1] += len(ids)
                if limit is not None and total + counts[-1] > limit:
                    break
        total += counts[-1]
        if limit is not None and total > limit:
            break
    return counts


def _pieces(text: str, n_tokens: int) -> list[str]:
    """``text`` cut into pieces of about TURN_TOKENS tokens (any cut point gives the same embedding)."""
    n = -(-n_tokens // TURN_TOKENS)
    size = -(-len(text) // n)
    return [text[i : i + size] for i in range(0, len(text), size)]


def create_app(
    model: LAM,
    index: Index | None = None,
    api_key: str | None = None,
    limits: ServerLimits | None = None,
    model_name: str | None = None,
    default_dimensions: int | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> FastAPI:
    """The API for ``model`` (and ``index``, when given); ``api_key`` turns on Bearer auth.

    ``allowed_hosts``: the ``Host`` names served (``"*"``: any). By default any host when an API
    key is set, and only loopback names (localhost, 127.0.0.1, ::1) when none is.
    """
    limits = limits or ServerLimits()
    full_dim = model.get_sentence_embedding_dimension()
    if default_dimensions is not None and not 1 <= default_dimensions <= full_dim:
        raise ValueError(f"default dimensions (--output-dim) must be in [1, {full_dim}], got {default_dimensions}")
    if allowed_hosts is None:
        allowed_hosts = ["*"] if api_key else list(LOOPBACK_HOSTS)
    name = model_name or f"lam-{(model.weights_sha256 or 'in-memory')[:12]}"
    worker = ThreadPoolExecutor(1, thread_name_prefix="lam-model")  # one model call at a time
    tokenizer = ThreadPoolExecutor(1, thread_name_prefix="lam-tokens")  # counting, off the event loop

    def embed_batch(texts: list[str]) -> np.ndarray:
        means = model.encode(texts, batch_size=32, normalize_embeddings=False)
        if (batcher.batches + 1) % TRIM_EVERY == 0:  # the batcher counts finished batches
            release_free_memory()  # a long-running server: freed tensors' pages back to the OS (lam.heap)
        return means

    batcher = MicroBatcher(embed_batch, worker, limits.max_batch_texts, limits.max_wait_ms, limits.max_queue)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()
        worker.shutdown(wait=True)
        tokenizer.shutdown(wait=True)
        if index is not None:
            index.close()

    app = FastAPI(title="LAM", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None)
    app.router.redirect_slashes = False  # an id ending in "/" is an id, not a reason to redirect
    app.state.batcher, app.state.metrics, app.state.limits = batcher, metrics, limits

    async def authorised(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), api_key.encode()):  # constant time; never logged
            raise APIError(401, "missing or wrong API key", "authentication_error", {"WWW-Authenticate": "Bearer"})

    def need_index() -> Index:
        if index is None:
            raise APIError(404, "this server has no index: start it with `lam serve --index PATH`", "not_found_error")
        return index

    def check_items(n: int, what: str) -> None:
        if n > limits.max_items:
            raise APIError(413, f"{n} {what} in one call; the limit is {limits.max_items}", "request_too_large")

    async def token_counts(texts: list[str], what: str) -> list[int] | None:
        """Tokens per text, counted off the event loop; None when the texts are surely under the
        limit (a token covers at least one character, so fewer characters than the limit are).
        A text with a lone surrogate (valid JSON, not valid Unicode) is a 422 here."""
        for i, text in enumerate(texts):
            check_unicode(text, f"{what}[{i}]")
        if sum(map(len, texts)) <= limits.max_tokens:
            return None
        loop = asyncio.get_running_loop()
        counts = await loop.run_in_executor(tokenizer, _token_counts, model, texts, limits.max_tokens)
        if sum(counts) > limits.max_tokens:
            raise APIError(
                413,
                f"over {limits.max_tokens} tokens in one call (server limit --max-tokens)",
                "request_too_large",
            )
        return counts

    async def unless_gone(request: Request, work: Awaitable[T]) -> T:
        """``work``, cancelled if the client disconnects first: its queued turns are then skipped,
        so no model time is spent for nobody."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
                if done:
                    return task.result()
                if await request.is_disconnected():
                    app.state.abandoned += 1
                    raise ClientGone
        finally:
            task.cancel()

    def answer(payload: dict[str, Any]) -> Response:
        body = orjson.dumps(payload, option=_NUMPY)
        if len(body) > limits.max_response_bytes:
            raise APIError(
                413,
                f"the answer would be {len(body)} bytes; the limit is {limits.max_response_bytes} "
                "(ask for fewer items, fewer dimensions or a smaller top_k)",
                "response_too_large",
            )
        return Response(body, media_type="application/json")

    app.state.abandoned = 0

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        kind = getattr(err, "kind", "not_found_error" if err.status_code == 404 else "invalid_request_error")
        return error_response(err.status_code, str(err.detail), kind, getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5]]
        return error_response(422, "; ".join(problems) or "invalid request body", "invalid_request_error")

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, err: QueueFullError) -> JSONResponse:
        return error_response(503, f"server busy: {err}; retry later", "server_busy", {"Retry-After": "1"})

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, err: ClientGone) -> JSONResponse:
        return error_response(499, "the client closed the connection; the work was dropped", "client_closed")

    @app.exception_handler(LAMIndexError)
    async def index_error(request: Request, err: LAMIndexError) -> JSONResponse:
        return error_response(503, str(err), "index_unavailable", {"Retry-After": "5"})

    @app.exception_handler(LAMError)
    async def lam_error(request: Request, err: LAMError) -> JSONResponse:
        return error_response(400, str(err), "invalid_request_error")

    @app.exception_handler(ValueError)
    async def value_error(request: Request, err: ValueError) -> JSONResponse:
        return error_response(422, str(err), "invalid_request_error")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": name,
            "dimensions": full_dim,
            "index": index is not None,
            "queue_depth": batcher.depth,
        }

    @app.get("/metrics", dependencies=[Depends(authorised)])
    async def get_metrics() -> dict[str, Any]:
        snapshot = metrics.snapshot()
        snapshot["queue_depth"] = batcher.depth
        snapshot["queue_limit"] = limits.max_queue
        snapshot["batches"] = batcher.batches
        snapshot["batched_texts"] = batcher.batched_texts
        snapshot["mean_batch_texts"] = round(batcher.batched_texts / batcher.batches, 3) if batcher.batches else 0.0
        snapshot["turns"] = batcher.calls
        snapshot["abandoned_requests"] = app.state.abandoned
        snapshot["skipped_jobs"] = batcher.skipped
        snapshot["limits"] = asdict(limits)
        return snapshot

    async def embed(texts: list[str], counts: list[int]) -> np.ndarray:
        """Rows for ``texts`` in turns: short texts in chunks of at most TURN_TOKENS (batched
        with other requests), a longer text fed a piece per turn through a document stream."""
        rows: list[np.ndarray | None] = [None] * len(texts)
        chunk: list[int] = []

        async def run_chunk() -> None:
            for i, row in zip(chunk, await batcher.submit([texts[i] for i in chunk])):
                rows[i] = row
            chunk.clear()

        for i, n in enumerate(counts):
            if n > TURN_TOKENS:
                continue
            if chunk and (len(chunk) == limits.max_batch_texts or sum(counts[j] for j in chunk) + n > TURN_TOKENS):
                await run_chunk()
            chunk.append(i)
        if chunk:
            await run_chunk()
        for i, n in enumerate(counts):
            if n > TURN_TOKENS:
                stream = model.stream()
                for piece in _pieces(texts[i], n):
                    await batcher.call(stream.feed, piece)
                rows[i] = await batcher.call(stream.embedding, False)
        return np.stack(rows)

    @app.post("/v1/embeddings", dependencies=[Depends(authorised)])
    async def embeddings(body: EmbeddingsRequest, request: Request) -> Response:
        texts = [body.input] if isinstance(body.input, str) else body.input
        check_items(len(texts), "inputs")
        dim = body.dimensions if body.dimensions is not None else default_dimensions
        if dim is not None and dim > full_dim:
            raise APIError(422, f"dimensions must be at most {full_dim}, got {dim}")
        counts = await token_counts(texts, "input")
        if counts is None:
            counts = await asyncio.get_running_loop().run_in_executor(tokenizer, _token_counts, model, texts)
        vectors = (await unless_gone(request, embed(texts, counts)))[:, : dim or full_dim]
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        vectors = vectors.astype("<f4")
        if body.encoding_format == "base64":
            encoded: list[Any] = [base64.b64encode(v.tobytes()).decode("ascii") for v in vectors]
        else:
            encoded = list(vectors)  # rows stay numpy: orjson writes them without a Python float each
        data = [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(encoded)]
        usage = {"prompt_tokens": sum(counts), "total_tokens": sum(counts)}
        return answer({"object": "list", "data": data, "model": name, "usage": usage})

    @app.post("/v1/index", dependencies=[Depends(authorised)])
    async def index_documents(body: IndexRequest, request: Request) -> dict[str, Any]:
        target = need_index()
        check_items(len(body.documents), "documents")
        # every document is checked before the first is written, as one index_many call would
        checked = check_documents([(d.id, d.text) for d in body.documents], [d.metadata for d in body.documents])
        await token_counts([text for _, text, _ in checked], "documents.text")

        async def write() -> int:  # a batch of documents per turn, each batch committed whole
            n, step = 0, target.batch_size
            for start in range(0, len(checked), step):
                batch = checked[start : start + step]
                pairs, metadata = [(d, t) for d, t, _ in batch], [m for _, _, m in batch]
                n += await batcher.call(lambda p=pairs, m=metadata: target.index_many(p, m, show_progress_bar=False))
            return n

        n = await unless_gone(request, write())
        return {"indexed": n, "documents": await batcher.call(len, target)}

    @app.post("/v1/search", dependencies=[Depends(authorised)])
    async def search(body: SearchRequest, request: Request) -> Response:
        target = need_index()
        queries = [body.query] if isinstance(body.query, str) else body.query
        check_items(len(queries), "queries")
        if len(queries) * body.top_k > limits.max_results:
            raise APIError(
                413,
                f"{len(queries)} queries × top_k {body.top_k} = {len(queries) * body.top_k} results; "
                f"the limit is {limits.max_results}",
                "request_too_large",
            )
        await token_counts(queries, "query")

        async def each() -> list[list[dict[str, Any]]]:  # a query per turn
            return [[asdict(h) for h in await batcher.call(target.search, q, body.top_k)] for q in queries]

        results = await unless_gone(request, each())
        return answer({"object": "list", "data": results[0] if isinstance(body.query, str) else results})

    @app.delete("/v1/documents/{doc_id:path}", dependencies=[Depends(authorised)])  # ids may hold "/"
    async def delete_document(doc_id: str) -> dict[str, Any]:
        target = need_index()
        removed, total = await batcher.call(lambda: (target.remove(doc_id), len(target)))
        if not removed:
            raise APIError(404, f"no document {doc_id!r} in the index", "not_found_error")
        return {"deleted": doc_id, "documents": total}

    app.add_middleware(CatchAllMiddleware)  # innermost of ours: a bug is a 500, the connection lives on
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_bytes)
    app.add_middleware(HostCheckMiddleware, allowed=allowed_hosts)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last: outermost, so it times 400s and 413s too
    return app


def _version() -> str:
    from lam import __version__

    return __version__
