"""Writing: every file edgeclf writes appears atomically (:class:`AtomicOutput`), and result rows
are written as CSV or JSON Lines (:class:`ResultWriter`)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .texts import LABEL_SEPARATOR, InputFileError, Prediction


class AtomicOutput:
    """A file that appears at ``path`` only when complete.

    Written to a hidden temporary file in the same directory, fsync'ed and
    renamed over the target on success, so a crash or SIGKILL at any point
    leaves either no file or the previous one, never a partial one. ``-`` or
    ``None`` writes to stdout (streamed; atomicity is the reader's concern),
    and so does an existing target that is not a regular file (a FIFO,
    ``/dev/null``, ``/dev/stdout``): renaming over it would replace the pipe
    or device itself (as root, ``-o /dev/null`` would turn it into a file).
    """

    def __init__(
        self, path: str | os.PathLike[str] | None, *, refuse: Sequence[str | os.PathLike[str]] = ()
    ) -> None:
        self.path = None if path is None or os.fspath(path) == "-" else Path(path)
        if self.path is not None:
            for other in refuse:
                if other is not None and os.fspath(other) != "-" and _same_file(self.path, Path(other)):
                    raise InputFileError(f"refusing to overwrite the input file {other} with the output")
            if self.path.is_dir():
                raise InputFileError(f"{self.path}: is a directory")
        self.special = self.path is not None and (
            (self.path.exists() and not self.path.is_file())
            # /dev/stdout, /dev/fd/1, /proc/self/fd/1 lead to a regular file when stdout is redirected
            # to one; renaming over them would replace the link (/dev/shm/x.csv stays atomic)
            or os.fspath(self.path.absolute().parent) in ("/dev", "/dev/fd")
            or os.fspath(self.path.absolute()).startswith("/proc/")
        )
        self._tmp: str | None = None
        self.fh: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self.path is None:
            self.fh = io.TextIOWrapper(
                sys.stdout.buffer, encoding="utf-8", errors="surrogateescape", newline="", write_through=False
            )
            return self.fh
        if self.special:
            try:
                self.fh = open(self.path, "w", encoding="utf-8", errors="surrogateescape", newline="")
            except OSError as exc:
                raise InputFileError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
            return self.fh
        directory = self.path.parent if str(self.path.parent) else Path(".")
        if not directory.is_dir():
            raise InputFileError(f"{self.path}: output directory {directory} does not exist")
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        except OSError as exc:  # e.g. a read-only directory: a usage error (exit 2), not a traceback
            raise InputFileError(
                f"{self.path}: cannot create a temporary file in {directory}: {exc.strerror or exc}"
            ) from None
        self.fh = open(fd, "w", encoding="utf-8", errors="surrogateescape", newline="")
        return self.fh

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.fh is not None
        if self.path is None:
            with contextlib.suppress(BrokenPipeError):
                self.fh.flush()
            self.fh.detach()
            return
        if self.special:
            with contextlib.suppress(BrokenPipeError):
                self.fh.close()
            return
        try:
            if exc_type is None:
                self.fh.flush()
                os.fsync(self.fh.fileno())
            self.fh.close()
            if exc_type is None:
                assert self._tmp is not None
                os.chmod(self._tmp, 0o666 & ~_umask())
                os.replace(self._tmp, self.path)
                self._tmp = None
        finally:
            if self._tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._tmp)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :class:`AtomicOutput`: the whole file or none."""
    with AtomicOutput(path) as fh:
        fh.write(text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


class ResultWriter:
    """Writes ``id,label,score[,p_<label>...],error`` rows as CSV, or the same as JSON Lines.

    ``label_format="id"`` writes label indexes instead of names. A multi-label
    head's labels are one CSV cell joined by ``|`` (empty when none) and a
    JSON list.
    """

    def __init__(
        self,
        fh: IO[str],
        *,
        fmt: str = "csv",
        labels: Sequence[str] = (),
        probabilities: bool = False,
        header: bool = True,
        label_format: str = "name",
        multi_label: bool = False,
    ) -> None:
        if fmt not in ("csv", "jsonl"):
            raise ValueError("format must be 'csv' or 'jsonl'")
        self.fh = fh
        self.fmt = fmt
        self.labels = list(labels)
        self.probabilities = probabilities
        self.ids = label_format == "id"
        self.multi = multi_label
        if fmt == "csv":
            self._csv = csv.writer(fh, lineterminator="\n")
            columns = ["id", "label", "score"]
            if probabilities:
                columns += [f"p_{lab}" for lab in self.labels]
            if header:
                self._csv.writerow([*columns, "error"])

    def _label(self, pred: Prediction) -> Any:
        values: tuple[Any, ...] = pred.label_ids if self.ids else pred.labels
        if self.fmt == "jsonl":
            return list(values) if self.multi else values[0]
        return LABEL_SEPARATOR.join(map(str, values))

    def write(self, rid: str, pred: Prediction) -> None:
        """One output row: ``pred``'s label(s) and score, or its error."""
        ok = pred.error is None
        probs = pred.probabilities
        if self.fmt == "csv":
            row: list[Any] = [rid, self._label(pred) if ok else "", f"{pred.score:.6f}" if ok else ""]
            if self.probabilities:
                row += [f"{p:.6f}" for p in probs.values()] if probs is not None else [""] * len(self.labels)
            row.append(pred.error or "")
            self._csv.writerow(row)
            return
        obj: dict[str, Any] = {
            "id": rid,
            "label": self._label(pred) if ok else None,
            "score": round(pred.score, 6) if ok else None,
        }
        if self.probabilities:
            obj["probabilities"] = None if probs is None else {k: round(p, 6) for k, p in probs.items()}
        obj["error"] = pred.error
        self.fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
