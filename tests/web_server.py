"""Run `policetrial serve` in a child process for tests that need a real server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .web_fixtures import SECRET


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    root: Path, database_url: str | None, *, workers: int = 1, options: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server on a free port; yields its base URL and process, and stops it after.

    `options` are added to `policetrial serve`'s command line."""
    port = free_port()
    env = {**os.environ, "POLICETRIAL_SECRET_KEY": SECRET}
    env.pop("POLICETRIAL_DATABASE_URL", None)
    if database_url:
        env["POLICETRIAL_DATABASE_URL"] = database_url
    process = subprocess.Popen(
        [sys.executable, "-m", "policetrial", "serve", "--workspace", str(root),
         "--port", str(port), "--workers", str(workers), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None:
                said = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"the server stopped: {said}")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield url, process
    finally:
        kill(process)


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)
    if process.stderr is not None and not process.stderr.closed:
        process.stderr.close()
