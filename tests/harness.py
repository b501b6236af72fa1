"""The one real-worker harness: start, watch and stop ``faust -A app worker`` processes.

The integration tests (:func:`run_worker`, re-exported by tests/support.py), the benchmark (bench/worker.py) and the
fault suite (faults/harness.py) all start their workers with :func:`start_worker`: the same command line (only the log
level differs), run in the repository with ``os.environ`` plus WEB_PORT, DATA_DIR and the caller's settings, its
output in a log file. They stop them the same way: SIGTERM, then SIGKILL to what is still running after a timeout
(:meth:`Worker.stop`, or :func:`stop_all` for several at once). Only the standard library is imported here, so the
benchmark and the fault suite can use it without the tests' dependencies.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAUST = str(Path(sys.executable).with_name("faust"))
#: Seconds a worker gets to exit after SIGTERM before it is killed, unless the caller says otherwise.
STOP_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict]:
    """Status and JSON body of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``predicate`` every 0.5 s until it holds; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Worker:
    """A running ``faust -A app worker`` process and how to reach it."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_until(self, predicate_path: str, want_status: int, timeout: float = 90.0) -> dict:
        """Poll a view until it answers ``want_status``; fail with the worker's log if it never does."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                status, body = http_get(self.url + predicate_path)
            except (OSError, ValueError) as error:
                last = error
            else:
                last = (status, body)
                if status == want_status:
                    return body
            time.sleep(0.5)
        raise AssertionError(f"{predicate_path} never answered {want_status}; last: {last}\n{self.log()[-4000:]}")

    def wait_until_logged(self, text: str, timeout: float = 60.0) -> None:
        """Wait for ``text`` in the worker's log; fail with the log if it never comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"never logged {text!r}:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        """SIGTERM, then SIGKILL if the process still runs ``timeout`` s later; the seconds it took to exit (0.0 when
        it had exited already)."""
        if self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def start_worker(
    env_overrides: Mapping[str, str | None],
    log_path: Path,
    data_dir: Path,
    *,
    level: str = "info",
    port: int | None = None,
    append: bool = False,
) -> Worker:
    """Start ``faust -A app worker -l <level>`` in the repository, its output (stderr too) in ``log_path``.

    Its environment is ``os.environ`` with WEB_PORT (``port``, else a free one) and DATA_DIR (``data_dir``), then
    ``env_overrides`` on top: those win, and a variable overridden with None is unset. The log is written afresh
    unless ``append``.
    """
    port = free_port() if port is None else port
    merged = {**os.environ, "WEB_PORT": str(port), "DATA_DIR": str(data_dir), **env_overrides}
    env = {name: value for name, value in merged.items() if value is not None}
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(
            [FAUST, "-A", "app", "worker", "-l", level], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return Worker(process, env, port, log_path)


@contextmanager
def run_worker(tmp_path: Path, overrides: Mapping[str, str]) -> Iterator[Worker]:
    """Start a worker with the default settings plus ``overrides``; stop it with SIGTERM afterwards.

    Its log is ``tmp_path/worker.log`` and its DATA_DIR ``tmp_path/faust-data`` (unless ``overrides`` names another).
    """
    worker = start_worker(overrides, tmp_path / "worker.log", tmp_path / "faust-data")
    try:
        yield worker
    finally:
        worker.stop(STOP_TIMEOUT)


def stop_all(workers: Iterable[Worker | subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to every one still running at once, then SIGKILL to those still running ``timeout`` s later."""
    processes = [worker.process if isinstance(worker, Worker) else worker for worker in workers]
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_faust(*args: str, env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``faust -A app <args>`` in the repository to its end: its exit status and output (as text)."""
    return subprocess.run(
        [FAUST, "-A", "app", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
