"""Streaming CSV in, one result per row out, written atomically.

The promise: every data row of the input yields exactly one output row, in
input order, with its id; a row that cannot be classified gets an output row
with an empty label and the reason in the ``error`` column. Problems that
make the whole file unusable (no header, no text column, undecodable
structure) raise :class:`InputFileError` before anything is written.

Bytes are decoded with ``surrogateescape``, so invalid UTF-8 never aborts a
file: the offending row is reported (and its id written back byte for byte)
while the rows around it are classified. A UTF-8 BOM is stripped.
Blank lines are not rows (as in pandas), and are counted in the summary.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: One CSV field may hold this many characters (a whole unterminated-quote
#: file must not become one field that eats all memory).
DEFAULT_MAX_FIELD_CHARS = 64 * 1024 * 1024


class InputFileError(ValueError):
    """The input file as a whole cannot be read (exit code 2)."""


@dataclass
class Row:
    number: int  # 1-based data row number (the header is not counted)
    line: int  # physical line where the row ends, as csv reports it
    id: str
    text: str | None
    error: str | None = None


@dataclass
class ReadStats:
    rows: int = 0
    blank_lines: int = 0
    duplicate_ids: int = 0


def open_text(path: str | os.PathLike[str] | None, encoding: str = "utf-8") -> IO[str]:
    """Open an input file (``None`` or ``-``: stdin) for the csv module."""
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig") else encoding
    if path is None or os.fspath(path) == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding=enc, errors="surrogateescape", newline="")
    try:
        return open(path, encoding=enc, errors="surrogateescape", newline="")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory, not a CSV file") from None
    except LookupError:
        raise InputFileError(f"unknown encoding {encoding!r}") from None
    except OSError as exc:
        raise InputFileError(f"{path}: {exc.strerror or exc}") from None


#: surrogateescape maps each undecodable byte to U+DC80..U+DCFF
_BAD_BYTES = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(s: str) -> bool:
    return not s.isascii() and _BAD_BYTES.search(s) is not None


def read_rows(
    fh: IO[str],
    *,
    name: str = "<input>",
    id_column: str | None = "id",
    text_column: str = "text",
    id_required: bool = False,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
    stats: ReadStats | None = None,
    delimiter: str = ",",
) -> Iterator[Row]:
    """Yield one :class:`Row` per data row; malformed rows carry ``error``.

    Without an id column (and ``id_required`` false) the 1-based row number
    is the id.
    """
    stats = stats if stats is not None else ReadStats()
    csv.field_size_limit(max_field_chars)
    reader = csv.reader(fh, delimiter=delimiter)
    try:
        header = next(reader, None)
        while header == []:
            stats.blank_lines += 1
            header = next(reader, None)
    except csv.Error as exc:
        raise InputFileError(f"{name}: cannot parse the header: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{name}: cannot decode: {exc}") from None
    if header is None:
        raise InputFileError(f"{name}: empty file (expected a header row with a {text_column!r} column)")
    header = [h.strip() for h in header]
    if text_column not in header:
        raise InputFileError(
            f"{name}: no {text_column!r} column in the header (columns: {', '.join(map(repr, header))}); "
            "choose one with --text-column"
        )
    text_idx = header.index(text_column)
    id_idx: int | None = None
    if id_column is not None and id_column in header:
        id_idx = header.index(id_column)
    elif id_required:
        raise InputFileError(
            f"{name}: no {id_column!r} column in the header (columns: {', '.join(map(repr, header))}); "
            "choose one with --id-column, or leave it out to number the rows"
        )
    width = len(header)
    seen: set[str] = set()
    number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputFileError(
                f"{name}: line {reader.line_num}: unreadable CSV after data row {number}: {exc}"
            ) from None
        if not fields:
            stats.blank_lines += 1
            continue
        number += 1
        stats.rows = number
        rid = fields[id_idx] if id_idx is not None and id_idx < len(fields) else str(number)
        if id_idx is not None:
            if rid in seen:
                stats.duplicate_ids += 1
            else:
                seen.add(rid)
        row = Row(number=number, line=reader.line_num, id=rid, text=None)
        if len(fields) != width:
            row.error = f"row {number} (line {reader.line_num}) has {len(fields)} fields, header has {width}"
            if text_idx < len(fields) and len(fields) < width:
                row.error += " (missing columns)"
            elif len(fields) > width:
                row.error += " (extra columns: an unquoted delimiter in the text?)"
        else:
            text = fields[text_idx]
            if _has_bad_bytes(text):
                row.error = f"row {number} (line {reader.line_num}): invalid bytes for the input encoding in {text_column!r}"
            elif not text.strip():
                row.error = f"row {number} (line {reader.line_num}): empty text"
            else:
                row.text = text
        yield row


# --------------------------------------------------------------------- output


class AtomicOutput:
    """A file that appears at ``path`` only when complete.

    Written to a hidden temporary file in the same directory, fsync'ed and
    renamed over the target on success, so a crash or SIGKILL at any point
    leaves either no file or the previous one, never a partial one. ``-`` or
    ``None`` writes to stdout (streamed; atomicity is the reader's concern).
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
        self._tmp: str | None = None
        self.fh: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self.path is None:
            self.fh = io.TextIOWrapper(
                sys.stdout.buffer, encoding="utf-8", errors="surrogateescape", newline="", write_through=False
            )
            return self.fh
        directory = self.path.parent if str(self.path.parent) else Path(".")
        if not directory.is_dir():
            raise InputFileError(f"{self.path}: output directory {directory} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        self.fh = open(fd, "w", encoding="utf-8", errors="surrogateescape", newline="")
        return self.fh

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.fh is not None
        if self.path is None:
            with contextlib.suppress(BrokenPipeError):
                self.fh.flush()
            self.fh.detach()
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
    """Writes ``id,label,score,error`` rows as CSV, or the same as JSON Lines."""

    def __init__(
        self, fh: IO[str], *, fmt: str = "csv", labels: Sequence[str] = (), probabilities: bool = False
    ) -> None:
        if fmt not in ("csv", "jsonl"):
            raise ValueError("format must be 'csv' or 'jsonl'")
        self.fh = fh
        self.fmt = fmt
        self.labels = list(labels)
        self.probabilities = probabilities
        if fmt == "csv":
            self._csv = csv.writer(fh, lineterminator="\n")
            header = ["id", "label", "score"]
            if probabilities:
                header += [f"p_{lab}" for lab in self.labels]
            self._csv.writerow([*header, "error"])

    def write(
        self,
        rid: str,
        label: str | int | None,
        score: float | None,
        probs: Sequence[float] | None,
        error: str | None,
    ) -> None:
        if self.fmt == "csv":
            row: list[Any] = [rid, "" if label is None else label, "" if score is None else f"{score:.6f}"]
            if self.probabilities:
                row += [f"{p:.6f}" for p in probs] if probs is not None else [""] * len(self.labels)
            row.append(error or "")
            self._csv.writerow(row)
        else:
            obj: dict[str, Any] = {
                "id": rid,
                "label": label,
                "score": None if score is None else round(score, 6),
            }
            if self.probabilities:
                obj["probabilities"] = (
                    None
                    if probs is None
                    else {lab: round(float(p), 6) for lab, p in zip(self.labels, probs, strict=True)}
                )
            obj["error"] = error
            self.fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
