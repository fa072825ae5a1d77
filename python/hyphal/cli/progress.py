"""Progress bars on stderr, fed by the progress lines a daemon streams."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PHASES = {"members": "reaching members", "repos": "syncing repos", "blobs": "fetching files", "done": "done"}


class AverageSpeedColumn(ProgressColumn):
    """Bytes per second since the bar started. (Rich's own column estimates from recent
    samples and shows ``?`` for a transfer shorter than its window, as most syncs are.)"""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        if not elapsed or not task.completed:
            return Text("", style="progress.data.speed")
        return Text(f"{decimal(int(task.completed / elapsed))}/s", style="progress.data.speed")


class ByteBar:
    """A bar of bytes: ``bar.update(progress)`` with a sync or get progress body.

    It shows from the first progress on, so a request that fails at once prints
    only its error line."""

    def __init__(self, label: str) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            AverageSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None
        self._label = label

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._progress.__exit__(exc_type, exc, tb)

    def update(self, body: Any) -> None:
        if not isinstance(body, dict):
            return
        if self._task is None:
            self._progress.__enter__()
            self._task = self._progress.add_task(self._label, total=None)
        phase = body.get("phase")
        files = f" {body.get('files_done', 0)}/{body.get('files_total', 0)} files" if phase == "blobs" else ""
        label = f"{self._label}: {PHASES.get(str(phase), str(phase))}{files}" if phase else self._label
        total = body.get("bytes_total")
        self._progress.update(
            self._task,
            description=label,
            completed=int(body.get("bytes_done", 0)),
            total=int(total) if isinstance(total, int) and total > 0 else None,
        )


__all__ = ["ByteBar"]
