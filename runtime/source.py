"""Opening an input for the row pipeline, and reading what precedes its records.

:class:`Source` is the input (a file or stdin) as a stream of bytes (UTF-8,
decoded by the workers) or text (other encodings), from which the pipeline
cuts chunks. Before that, :meth:`Source.header` reads the CSV header (or, for
a file without one, looks at the first record without consuming it) and
leaves everything after it to be read, so that chunks start at a record.
"""

from __future__ import annotations

import io
import os
from typing import Any

from .chunking import open_at_end
from .csvio import DEFAULT_MAX_FIELD_CHARS, Layout, ReadStats, csv_reader, open_binary, open_text, read_header
from .texts import InputFileError

UTF8_NAMES = ("utf-8", "utf8", "utf-8-sig")


def is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in UTF8_NAMES


class Source:
    """The input as a stream of bytes (UTF-8) or text (other encodings); ``-``: stdin."""

    def __init__(self, path: str, encoding: str = "utf-8") -> None:
        self.utf8 = is_utf8(encoding)
        self.stdin = path == "-"
        self.fh: Any = open_binary(path) if self.utf8 else open_text(path, encoding)
        try:
            self.size = 0 if self.stdin else os.fstat(self.fh.fileno()).st_size
        except (OSError, ValueError):
            self.size = 0
        self.pushed: Any = None

    def read(self, n: int) -> Any:
        if self.pushed:
            data, self.pushed = self.pushed, None
            return data
        return self.fh.read(n)

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.stdin:
            self.fh.close()

    def skip_bom(self) -> None:
        """Drop a UTF-8 byte order mark at the start (text streams decode it away already)."""
        buf = self.read(1 << 16)
        self.pushed = buf[3:] if self.utf8 and buf[:3] == b"\xef\xbb\xbf" else buf

    def header(
        self, stats: ReadStats, *, delimiter: str = ",", header_row: bool = True, **kw: Any
    ) -> tuple[Layout, int]:
        """Read the header (and blank lines before it; a BOM); what follows it stays to be read.

        Returns the layout and the lines read. ``kw`` go to :func:`edgeclf.csvio.read_header`.
        ``header_row=False``: the first record is looked at (for the number of
        columns) and left to be read as data.
        """
        self.skip_bom()
        buf = self.read(1 << 16)
        eof = not buf
        while True:
            text = buf.decode("utf-8", "surrogateescape") if self.utf8 else buf
            record: list[str] = []
            reader = csv_reader(io.StringIO(text, newline=""), record, delimiter, DEFAULT_MAX_FIELD_CHARS)
            trial = ReadStats()
            try:
                layout = read_header(reader, trial, delimiter=delimiter, header_row=header_row, **kw)
                used = "".join(record)
                done = used.endswith(("\n", "\r")) and not open_at_end(used, delimiter)
                done = done and (len(used) < len(text) or not used.endswith("\r"))  # \r, then \n?
            except InputFileError:
                used = "".join(record)
                complete = used.endswith(("\n", "\r")) and len(used) < len(text)
                if eof or (complete and not open_at_end(used, delimiter)):
                    raise  # a whole header that is wrong: no need to read on
                done, used = False, ""
            if done or eof:
                break
            more = self.read(1 << 16)
            eof = not more
            buf += more
        if not header_row:  # the first record is data: everything is still to be read
            self.pushed = buf
            return layout, 0
        stats.blank_lines += trial.blank_lines
        size = len(text[: len(used)].encode("utf-8", "surrogateescape")) if self.utf8 else len(used)
        self.pushed = buf[size:]
        return layout, reader.line_num
