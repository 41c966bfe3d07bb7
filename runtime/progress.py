"""A progress bar on stderr that moves, only when a person is watching.

A thread redraws it four times a second whatever the model's speed, so a
slow model still shows the clock running: rows done, rows/s, and (when the
input size is known) the share of the file done and an ETA estimated from
the bytes processed so far. Nothing is drawn when stderr is not a terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any


class Counts:
    """Rows and input bytes done, added to from any thread of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows = 0.0
        self.bytes = 0.0

    def add(self, rows: float, nbytes: float) -> None:
        with self._lock:
            self.rows += rows
            self.bytes += nbytes

    def get(self) -> tuple[float, float]:
        with self._lock:
            return self.rows, self.bytes


class SharedCounts(Counts):
    """The same in shared memory, for worker processes (inherited at start, never pickled to a file)."""

    def __init__(self, mp_context: Any) -> None:
        self._arr = mp_context.Array("d", 2)

    def add(self, rows: float, nbytes: float) -> None:
        with self._arr.get_lock():
            self._arr[0] += rows
            self._arr[1] += nbytes

    def get(self) -> tuple[float, float]:
        with self._arr.get_lock():
            return self._arr[0], self._arr[1]


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(self, stream: IO[str] | None = None, interval: float = 0.25) -> None:
        self.stream = stream or sys.stderr
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.interval = interval
        self.total = 0
        self.counts: Counts = Counts()
        self.start_time = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, total_bytes: int, mp_context: Any = None) -> Counts:
        """Start drawing; ``total_bytes`` is the input's size (0: unknown, e.g. stdin).

        Returns the counts to feed: in shared memory when ``mp_context`` is
        given (worker processes add to them), else in this process.
        """
        self.total = total_bytes
        self.start_time = time.perf_counter()
        self.counts = SharedCounts(mp_context) if mp_context is not None else Counts()
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edgeclf-progress", daemon=True)
            self._thread.start()
        return self.counts

    def line(self) -> str:
        rows, done = self.counts.get()
        rows = int(rows)
        elapsed = time.perf_counter() - self.start_time
        rate = f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 and rows else "- rows/s"
        text = f"{rows:,} rows  {rate}  {_clock(elapsed)}"
        if self.total:
            frac = min(done / self.total, 1.0)
            eta = _clock(elapsed * (1 - frac) / frac) if frac > 0 else "?"
            text = f"[{'#' * int(frac * 30):<30}] {frac:6.1%}  {text}  ETA {eta}"
        return text

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.stream.write(f"\r{self.line()}\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
