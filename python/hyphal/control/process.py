"""A node daemon as a child process, and the CLI as a subprocess: what the multi-node demo
and the CLI tests drive real nodes with.

:class:`DaemonProcess` starts ``hyphal node run`` (or ``serve``) and waits for
its ready line (never a fixed sleep), and stops it with SIGTERM.
:func:`run_cli` runs one ``hyphal --json`` command and parses its output.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from hyphal.errors import HyphalError

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def hyphal_command() -> list[str]:
    """The console script beside this Python (the venv's), else ``python -m hyphal.cli``."""
    script = Path(sys.executable).with_name("hyphal")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hyphal.cli"]


class CliError(HyphalError):
    """A ``hyphal`` command exited non-zero; ``stderr`` holds what it said."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"`hyphal {' '.join(args[:2])}` exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def run_cli(data_dir: Path, *args: str, stderr: int | None = subprocess.PIPE, timeout: float = 120) -> Any:
    """``hyphal --data-dir DATA_DIR --json ARGS``'s parsed output (:class:`CliError` if it fails).

    ``stderr=None`` lets the command's stderr through (a progress bar, say)."""
    done = subprocess.run(
        [*hyphal_command(), "--data-dir", str(data_dir), "--json", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise CliError(args, done.returncode, done.stderr or "")
    return json.loads(done.stdout)


class DaemonProcess:
    """``hyphal --data-dir DATA_DIR --json <command...>`` running until :meth:`stop`.

    ``info`` is its ready line (public key, address, control socket). Its log
    (stderr) goes to ``log_path``.
    """

    def __init__(self, data_dir: Path, command: Sequence[str], log_path: Path | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path or data_dir.with_name(data_dir.name + ".log")
        self._command = [*hyphal_command(), "--data-dir", str(data_dir), "--json", *command]
        self._process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    @property
    def address(self) -> str:
        return str(self.info["address"])

    @property
    def public_key(self) -> str:
        return str(self.info["public_key"])

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, timeout: float = READY_TIMEOUT) -> Self:
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self._command, stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ}
            )
        assert self._process.stdout is not None
        line = read_line(self._process.stdout, timeout)
        if not line:
            self.kill()
            raise HyphalError(f"`{' '.join(self._command[-3:])}` did not start: {self.log_tail()}")
        self.info = json.loads(line)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then its exit status (killed if it does not exit in ``timeout``)."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise HyphalError(f"the node in {self.data_dir} did not stop on SIGTERM") from None

    def exited(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` for the process to exit: its status, or None if it still runs."""
        if self._process is None:
            return 0
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self.kill()


def read_line(stream: IO[str], timeout: float) -> str:
    """One line from ``stream``, or ``""`` after ``timeout`` (a thread does the blocking read)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


__all__ = ["CliError", "DaemonProcess", "hyphal_command", "read_line", "run_cli"]
