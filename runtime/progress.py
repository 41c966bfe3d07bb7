"""A one-line progress bar on stderr, only when a person is watching."""

from __future__ import annotations

import os
import sys
import time
from typing import IO


class Progress:
    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.total = 0
        self.raw = None
        self.start = time.perf_counter()
        self.last = 0.0

    def attach(self, fh: IO[str]) -> None:
        if self.enabled:
            try:
                self.raw = fh.buffer  # type: ignore[attr-defined]
                self.total = os.fstat(fh.fileno()).st_size
            except (AttributeError, OSError, ValueError):
                self.raw = None

    def update(self, rows: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        rate = rows / max(now - self.start, 1e-9)
        frac = ""
        if self.raw is not None and self.total:
            try:
                done = min(self.raw.tell() / self.total, 1.0)
                bar = "#" * int(done * 30)
                frac = f"[{bar:<30}] {done:6.1%} "
            except (OSError, ValueError):
                pass
        sys.stderr.write(f"\r{frac}{rows:,} rows  {rate:,.0f} rows/s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
