"""Request counts and latencies for ``GET /metrics``, recorded by an ASGI middleware.

Latency quantiles are over each route's last ``window`` requests (a bounded deque), so memory
stays constant however long the server runs. Routes are labelled by their template
(``/v1/documents/{doc_id}``), never by the raw path, for the same reason.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from typing import Any

import numpy as np


class Metrics:
    """Thread-safe counters: requests by route and status, and recent latencies by route."""

    def __init__(self, window: int = 10_000) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, int]] = Counter()
        self._latency: defaultdict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))

    def record(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._counts[route, status] += 1
            self._latency[route].append(seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            latency = {route: np.array(values) for route, values in self._latency.items()}
        requests: dict[str, dict[str, int]] = defaultdict(dict)
        for (route, status), n in sorted(counts.items()):
            requests[route][str(status)] = n
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "requests_total": sum(counts.values()),
            "requests": dict(requests),
            "latency_ms": {
                route: {
                    "window": len(values),
                    "p50": round(float(np.percentile(values, 50)) * 1000, 3),
                    "p95": round(float(np.percentile(values, 95)) * 1000, 3),
                    "max": round(float(values.max()) * 1000, 3),
                }
                for route, values in sorted(latency.items())
                if len(values)
            },
        }


class MetricsMiddleware:
    """Pure ASGI (no per-request task like BaseHTTPMiddleware): time each HTTP request."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.record(f"{scope['method']} {label}", status, time.perf_counter() - started)
