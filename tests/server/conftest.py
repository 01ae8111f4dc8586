"""A real ``lam serve`` process on 127.0.0.1 (module-scoped), with a key and small limits."""

from __future__ import annotations

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from lam.server.process import ServerProcess  # noqa: E402 - after the skips

API_KEY = "test-key-5d41402abc4b2a76"
MAX_ITEMS, MAX_BYTES = 8, 20_000


class Server(ServerProcess):
    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    args = ["--index", str(tmp / "idx.lam"), "--max-items", str(MAX_ITEMS), "--max-bytes", str(MAX_BYTES)]
    with Server([*args, "--access-log"], env={"LAM_API_KEY": API_KEY}, log=tmp / "server.log") as srv:
        yield srv
