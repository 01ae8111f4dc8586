"""ASGI middlewares that guard every request before and after a route runs.

* :class:`HostCheckMiddleware` — without an API key, only requests addressed to an allowed
  ``Host`` are served: a web page on another site can make a browser send requests to
  ``localhost`` (DNS rebinding), but it cannot make the browser send ``Host: localhost``.
* :class:`BodyLimitMiddleware` — 413 for a body over the byte limit, before it is held whole.
* :class:`CatchAllMiddleware` — an unexpected error is a 500 answer and nothing more: the
  connection stays open for the client's next request (Starlette's own handler re-raises, and
  the server then drops the keep-alive connection).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

logger = logging.getLogger("lam.server")

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class APIError(HTTPException):
    """An HTTP error with an OpenAI-style ``type``."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", headers=None) -> None:
        super().__init__(status, message, headers=headers)
        self.kind = kind


def error_response(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    """The one error shape of the API: ``{"error": {"message", "type", "code"}}``."""
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def is_loopback(host: str) -> bool:
    return host.strip("[]") in LOOPBACK_HOSTS or host.startswith("127.")


def host_name(header: str) -> str:
    """The name of a ``Host`` header without its port (``[::1]:8000`` → ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostCheckMiddleware:
    """400 for a request whose ``Host`` is not allowed (``"*"`` in ``allowed`` allows any)."""

    def __init__(self, app, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = {host_name(h) for h in allowed}
        self.any = "*" in self.allowed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.any:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if host_name(header) not in self.allowed:
            message = (
                f"Host {header!r} is not served here: this server has no API key, so it answers only "
                "requests addressed to its allowed names (lam serve --allowed-host NAME, or set an API key)"
            )
            await error_response(400, message, "invalid_request_error")(scope, receive, send)
            return
        await self.app(scope, receive, send)


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
            await error_response(413, self._message(), "request_too_large")(scope, receive, send)
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


class CatchAllMiddleware:
    """Any exception a route lets through: logged, answered with a 500, and not re-raised."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message) -> None:
            nonlocal started
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as err:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                message = f"internal error ({type(err).__name__}); the server keeps running"
                await error_response(500, message, "server_error")(scope, receive, send)
