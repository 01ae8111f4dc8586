"""The HTTP API: ``create_app(model, ...)`` → a FastAPI app; ``lam serve`` runs it with uvicorn.

Routes (JSON in, JSON out; every error is ``{"error": {"message", "type", "code"}}``):

* ``POST /v1/embeddings`` — OpenAI's embeddings API, micro-batched (:mod:`lam.server.batching`);
* ``POST /v1/index``, ``POST /v1/search``, ``DELETE /v1/documents/{doc_id}`` — the persistent
  index (:class:`lam.Index`), when the server was started with one;
* ``GET /health`` (no key needed) and ``GET /metrics`` (counts, latencies, queue depth).

Statuses: 401 without the API key (when one is set), 413 over the item or byte limits,
422 for a body of the wrong shape or type, 503 when the queue is full, 404 for unknown
documents or when there is no index. The model runs on one worker thread, so the event loop
keeps answering (health, 503s, 413s) while it works; bad input never reaches it.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from lam.errors import LAMError
from lam.heap import release_free_memory
from lam.server.batching import MicroBatcher, QueueFullError
from lam.server.metrics import Metrics, MetricsMiddleware
from lam.server.schemas import EmbeddingsRequest, IndexRequest, SearchRequest

if TYPE_CHECKING:
    from lam.encoder import LAM
    from lam.retrieval.index import Index

logger = logging.getLogger(__name__)
TRIM_EVERY = 32  # model calls between malloc_trim calls
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask, and how much work may wait."""

    max_items: int = 2048  # inputs per /v1/embeddings call, documents per /v1/index call
    max_bytes: int = 1 << 20  # request body: 1 MiB ≈ 250K tokens ≈ 40 s of this CPU
    max_batch_texts: int = 64  # texts per model call when requests are batched together
    max_wait_ms: float = 2.0  # how long a batch waits for more requests
    max_queue: int = 256  # requests waiting before 503


class APIError(HTTPException):
    """An HTTP error with an OpenAI-style ``type``."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", headers=None) -> None:
        super().__init__(status, message, headers=headers)
        self.kind = kind


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes``: by Content-Length before reading, and while reading
    (a chunked body has no length), so an oversize body is never held in memory whole."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _error(413, self._message(), "request_too_large")(scope, receive, send)
            return
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # FastAPI re-raises HTTPExceptions from the body read
                raise APIError(413, self._message(), "request_too_large")
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"request body over {self.max_bytes} bytes (server limit --max-bytes)"


def _token_counts(model: LAM, texts: list[str]) -> list[int]:
    """Tokens per text as the model reads them (without [CLS]/[SEP]); short texts in one call."""
    piece = model.segmenter.piece_chars
    short = [t for t in texts if len(t) <= piece]
    counts = iter([len(ids) for ids in model.segmenter.body_ids_batch(short)] if short else [])
    return [next(counts) if len(t) <= piece else model.count_tokens(t) for t in texts]


def create_app(
    model: LAM,
    index: Index | None = None,
    api_key: str | None = None,
    limits: ServerLimits | None = None,
    model_name: str | None = None,
    default_dimensions: int | None = None,
) -> FastAPI:
    """The API for ``model`` (and ``index``, when given); ``api_key`` turns on Bearer auth."""
    limits = limits or ServerLimits()
    full_dim = model.get_sentence_embedding_dimension()
    if default_dimensions is not None and not 1 <= default_dimensions <= full_dim:
        raise ValueError(f"default dimensions (--output-dim) must be in [1, {full_dim}], got {default_dimensions}")
    name = model_name or f"lam-{(model.weights_sha256 or 'in-memory')[:12]}"
    worker = ThreadPoolExecutor(1, thread_name_prefix="lam-model")  # one model call at a time

    def embed_batch(texts: list[str]) -> list[tuple[np.ndarray, int]]:
        means = model.encode(texts, batch_size=32, normalize_embeddings=False)
        if (batcher.batches + 1) % TRIM_EVERY == 0:  # the batcher counts finished batches
            release_free_memory()  # a long-running server: freed tensors' pages back to the OS (lam.heap)
        return list(zip(means, _token_counts(model, texts)))

    batcher = MicroBatcher(embed_batch, worker, limits.max_batch_texts, limits.max_wait_ms, limits.max_queue)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()
        worker.shutdown(wait=True)
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

    async def in_worker(fn, *args):
        """Run index work on the model's thread (after any batch already running)."""
        return await asyncio.get_running_loop().run_in_executor(worker, fn, *args)

    def need_index() -> Index:
        if index is None:
            raise APIError(404, "this server has no index: start it with `lam serve --index PATH`", "not_found_error")
        return index

    def check_items(n: int, what: str) -> None:
        if n > limits.max_items:
            raise APIError(413, f"{n} {what} in one call; the limit is {limits.max_items}", "request_too_large")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        kind = getattr(err, "kind", "not_found_error" if err.status_code == 404 else "invalid_request_error")
        return _error(err.status_code, str(err.detail), kind, getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5]]
        return _error(422, "; ".join(problems) or "invalid request body", "invalid_request_error")

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, err: QueueFullError) -> JSONResponse:
        return _error(503, f"server busy: {err}; retry later", "server_busy", {"Retry-After": "1"})

    @app.exception_handler(LAMError)
    async def lam_error(request: Request, err: LAMError) -> JSONResponse:
        return _error(400, str(err), "invalid_request_error")

    @app.exception_handler(ValueError)
    async def value_error(request: Request, err: ValueError) -> JSONResponse:
        return _error(422, str(err), "invalid_request_error")

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(err).__name__}); the server keeps running", "server_error")

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
        snapshot["limits"] = asdict(limits)
        return snapshot

    @app.post("/v1/embeddings", dependencies=[Depends(authorised)])
    async def embeddings(body: EmbeddingsRequest) -> JSONResponse:
        texts = [body.input] if isinstance(body.input, str) else body.input
        check_items(len(texts), "inputs")
        dim = body.dimensions if body.dimensions is not None else default_dimensions
        if dim is not None and dim > full_dim:
            raise APIError(422, f"dimensions must be at most {full_dim}, got {dim}")
        rows = await batcher.submit(texts)
        vectors = np.stack([v for v, _ in rows])[:, : dim or full_dim]
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        vectors = vectors.astype("<f4")
        if body.encoding_format == "base64":
            encoded: list[Any] = [base64.b64encode(v.tobytes()).decode("ascii") for v in vectors]
        else:
            encoded = list(vectors)  # rows stay numpy: orjson writes them without a Python float each
        tokens = sum(n for _, n in rows)
        data = [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(encoded)]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Response(
            orjson.dumps({"object": "list", "data": data, "model": name, "usage": usage}, option=_NUMPY),
            media_type="application/json",
        )

    @app.post("/v1/index", dependencies=[Depends(authorised)])
    async def index_documents(body: IndexRequest) -> dict[str, Any]:
        target = need_index()
        check_items(len(body.documents), "documents")
        pairs = [(d.id, d.text) for d in body.documents]
        metadata = [d.metadata for d in body.documents]
        n, total = await in_worker(lambda: (target.index_many(pairs, metadata, show_progress_bar=False), len(target)))
        return {"indexed": n, "documents": total}

    @app.post("/v1/search", dependencies=[Depends(authorised)])
    async def search(body: SearchRequest) -> dict[str, Any]:
        target = need_index()
        queries = [body.query] if isinstance(body.query, str) else body.query
        check_items(len(queries), "queries")
        found = await in_worker(target.search, queries, body.top_k)
        results = [[asdict(hit) for hit in hits] for hits in found]
        return {"object": "list", "data": results[0] if isinstance(body.query, str) else results}

    @app.delete("/v1/documents/{doc_id:path}", dependencies=[Depends(authorised)])  # ids may hold "/"
    async def delete_document(doc_id: str) -> dict[str, Any]:
        target = need_index()
        removed, total = await in_worker(lambda: (target.remove(doc_id), len(target)))
        if not removed:
            raise APIError(404, f"no document {doc_id!r} in the index", "not_found_error")
        return {"deleted": doc_id, "documents": total}

    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last: outermost, so it times 413s too
    return app


def _version() -> str:
    from lam import __version__

    return __version__
