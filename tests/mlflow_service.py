"""A real `mlflow server` on 127.0.0.1, for the tests and benches that export or sync to MLflow
(tests/test_mlflow.py, tests/test_sync.py, bench/bench_sync.py): one way to start it, wait for it and stop it.

Imports nothing from pytest or MLflow (the server is the venv's ``mlflow`` command), so a bench can use it::

    with running_mlflow(tmp) as server:
        export_runs(reader, ids, server.uri, "bench")
"""

from __future__ import annotations

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

MLFLOW = str(Path(sys.executable).parent / "mlflow")
START_TIMEOUT = 120.0  # seconds for the server to answer /health (a loaded machine, a PostgreSQL backend)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """``mlflow server`` with one worker on a free port of 127.0.0.1, its artifacts and log under ``root``.

    Args:
        root: a folder for ``mlflow.log``, ``artifacts/`` and the default backend ``mlflow.db``.
        backend: the backend store URI; default SQLite in ``root``. The same server can be stopped and started
            again: same port, same backend.
    """

    def __init__(self, root: Path, backend: str | None = None) -> None:
        self.root, self.port, self.proc = Path(root), free_port(), None
        self.backend = backend or f"sqlite:///{self.root / 'mlflow.db'}"
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        """Start it and wait until it answers; a server that exits or does not answer in time is stopped, and
        the error carries the end of its log."""
        with open(self.root / "mlflow.log", "a") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [
                    MLFLOW,
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    self.backend,
                    "--artifacts-destination",
                    str(self.root / "artifacts"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends the workers too
            )
        deadline = time.time() + START_TIMEOUT
        while True:
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop(signal.SIGKILL)
                    raise RuntimeError((self.root / "mlflow.log").read_text()[-3000:]) from None
                time.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and its workers with ``sig`` (SIGKILL after 20 s if they are still there)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def kill(self) -> None:
        """Kill it mid-whatever (SIGKILL), as a crash or a pulled plug would."""
        self.stop(signal.SIGKILL)


@contextmanager
def running_mlflow(root: Path, backend: str | None = None) -> Iterator[MlflowServer]:
    """A started :class:`MlflowServer`, stopped on the way out whatever happened meanwhile."""
    server = MlflowServer(root, backend).start()
    try:
        yield server
    finally:
        server.stop()
