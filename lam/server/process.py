"""``lam serve`` in a child process: start it, wait until ``/health`` answers, stop it.

For tests and benchmarks that must talk to a real server over loopback, and for programs
that want an embedding service next to them without a shell script.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (another process could still take it first)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``with ServerProcess(["--index", "i.lam"], log=Path("serve.log")) as srv: srv.url``.

    :param args: extra ``lam serve`` arguments (not --host/--port, which this chooses).
    :param env: extra environment (e.g. ``{"LAM_API_KEY": ...}``).
    :param log: file for the server's stdout and stderr (default: discarded).
    """

    def __init__(self, args: list[str] | None = None, env: dict[str, str] | None = None, log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "lam.cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        out = log.open("w") if log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [*cmd, *(args or [])], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until_healthy(self, timeout: float = 120) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lam serve exited with {self.process.returncode}: {self._log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"lam serve did not answer /health in {timeout:.0f} s: {self._log_text()}")

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _log_text(self) -> str:
        return self.log.read_text()[-4000:] if self.log is not None and self.log.exists() else "(no log)"

    def __enter__(self) -> ServerProcess:
        return self.wait_until_healthy()

    def __exit__(self, *exc) -> None:
        self.stop()
