"""Reading CSV input: opening it, the header (or none), and records, for one parse or per chunk.

The promise of ``edgeclf predict``: every data row of the input yields exactly one output row, in
input order, with its id; a row that cannot be classified gets an output row
with an empty label and the reason in the ``error`` column. Problems that
make the whole file unusable (no header, no text column, undecodable
structure) raise :class:`InputFileError` before anything is written.

Bytes are decoded with ``surrogateescape``, so invalid UTF-8 never aborts a
file: the offending row is reported (and its id written back byte for byte)
while the rows around it are classified. A UTF-8 BOM is stripped.
Blank lines are not rows (as in pandas), and are counted in the summary.

Quoting is parsed leniently (as the csv module does by default), with one
exception that protects the promise: a quote that is never closed swallows
every following line into one field. A record whose quoted field is still
open at the end of the file, or a multi-line record whose quoting is
malformed (the usual trace of an unbalanced quote that merged rows), becomes
an error row naming the lines it spans, instead of a silently merged text.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from .chunking import open_at_end
from .texts import InputFileError, text_error

__all__ = ["InputFileError", "Layout", "ReadStats", "Record", "Row", "read_rows"]

#: One CSV field may hold this many characters (a whole unterminated-quote
#: file must not become one field that eats all memory).
DEFAULT_MAX_FIELD_CHARS = 64 * 1024 * 1024

#: Distinct ids remembered to count duplicates for the summary. Bounded so that
#: memory stays flat for any number of rows (1M ids would take ~100 MB): past
#: this many, ids are still checked against the remembered ones, not added.
DUPLICATE_ID_WINDOW = 100_000


@dataclass
class Row:
    number: int  # 1-based data row number (the header is not counted)
    line: int  # physical line where the row ends, as csv reports it
    id: str
    text: str | None
    error: str | None = None
    first_line: int = 0  # physical line where the row starts (quoted newlines make rows span lines)


@dataclass
class ReadStats:
    rows: int = 0
    blank_lines: int = 0
    duplicate_ids: int = 0
    #: more than DUPLICATE_ID_WINDOW distinct ids: duplicates_ids counts repeats of the first ones only
    duplicate_window_full: bool = False


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


def open_binary(path: str | os.PathLike[str] | None) -> IO[bytes]:
    """Open an input file (``None`` or ``-``: stdin) as bytes, for :func:`cut_chunks`."""
    if path is None or os.fspath(path) == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise InputFileError(f"{path}: {exc.strerror or exc}") from None


def _tap(fh: Iterable[str], record: list[str]) -> Iterator[str]:
    """Feed ``fh``'s lines to csv.reader, keeping the raw lines of the current record.

    The raw lines let a record that the lenient parser accepted be re-checked
    strictly (see :func:`_quoting_problem`); csv.reader never reads ahead, so
    the lines pulled between two records are exactly the second one's.
    Python 3.10's csv refuses NUL ("line contains NUL", fatal for the whole
    file); there NUL becomes U+FFFD so the row is classified as on 3.11+.
    """
    fix_nul = sys.version_info < (3, 11)
    for line in fh:
        if fix_nul and "\x00" in line:
            line = line.replace("\x00", "\ufffd")
        record.append(line)
        yield line


def _quoting_problem(lines: list[str], delimiter: str) -> str | None:
    """Why a record's quoting cannot be trusted, or None.

    The lenient parser accepts a quote left open up to the end of the file
    (the field then holds every following line) and, after a quote closes,
    any text before the next delimiter. Re-parsing the record strictly tells
    the two apart from a well-formed record. Only multi-line records (and the
    last one) are checked: a merge always spans lines, and a sloppy quote on a
    single line (``"Great" movie``) stays classified as before.
    """
    try:
        for _ in csv.reader(lines, delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        message = str(exc)
        if "end of data" in message:
            return "unterminated"
        if len(lines) > 1 and "field limit" not in message:
            return message
    return None


@dataclass(frozen=True)
class Layout:
    """What the header says: where the text and id are, how many fields a row has."""

    name: str
    text_column: str
    text_idx: int
    id_idx: int | None
    width: int
    delimiter: str = ","
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS

    @property
    def has_ids(self) -> bool:
        return self.id_idx is not None

    def parse(self, text: str, last: bool) -> Parsed:
        """The records of one chunk of the input (whole records, from a record boundary)."""
        record: list[str] = []
        final: list[str] = []
        reader = csv_reader(io.StringIO(text, newline=""), record, self.delimiter, self.max_field_chars)
        stats = ReadStats()
        try:
            records = list(parse_records(reader, record, self, stats, final))
        except RecordError as exc:
            return Parsed([], 0, 0, False, exc)
        open_end = not last and open_at_end("".join(final), self.delimiter)
        return Parsed(records, reader.line_num, stats.blank_lines, open_end)


class RecordError(Exception):
    """csv cannot go on (a field over the limit): line and rows counted from the parse start."""

    def __init__(self, line: int, rows: int, detail: str) -> None:
        super().__init__(line, rows, detail)
        self.line, self.rows, self.detail = line, rows, detail

    def input_error(self, line_offset: int = 0, row_offset: int = 0) -> InputFileError:
        return InputFileError(
            f"line {self.line + line_offset}: unreadable CSV after data row {self.rows + row_offset}: {self.detail}"
        )


def csv_reader(lines: Iterable[str], record: list[str], delimiter: str, max_field_chars: int) -> Any:
    csv.field_size_limit(max_field_chars)
    return csv.reader(_tap(lines, record), delimiter=delimiter)


def read_header(
    reader: Any,
    stats: ReadStats,
    *,
    name: str = "<input>",
    id_column: str | None = "id",
    text_column: str = "text",
    id_required: bool = False,
    delimiter: str = ",",
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
    header_row: bool = True,
) -> Layout:
    """Read the header row (blank lines before it are skipped); a bad header is an InputFileError.

    ``header_row=False``: the file has none; the first record only tells how
    many columns rows have (see :func:`headerless`).
    """
    try:
        header = next(reader, None)
        while header == []:
            stats.blank_lines += 1
            header = next(reader, None)
    except csv.Error as exc:
        raise InputFileError(f"{name}: cannot parse the header: {_csv_error(exc, max_field_chars)}") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{name}: cannot decode: {exc}") from None
    if not header_row:
        return headerless(len(header or [""]), name, id_column, text_column, delimiter, max_field_chars)
    if header is None:
        raise InputFileError(f"{name}: empty file (expected a header row with a {text_column!r} column)")
    header = [h.strip() for h in header]
    if text_column not in header:
        raise InputFileError(
            f"{name}: no {text_column!r} column in the header (columns: {', '.join(map(repr, header))}); "
            f"choose one with --text-column{_delimiter_hint(header, delimiter)}"
        )
    id_idx: int | None = None
    if id_column is not None and id_column in header:
        id_idx = header.index(id_column)
    elif id_required:
        raise InputFileError(
            f"{name}: no {id_column!r} column in the header (columns: {', '.join(map(repr, header))}); "
            "choose one with --id-column, or leave it out to number the rows"
        )
    return Layout(
        name, text_column, header.index(text_column), id_idx, len(header), delimiter, max_field_chars
    )


def _delimiter_hint(header: list[str], delimiter: str) -> str:
    """When a one-column header holds another usual delimiter: suggest --delimiter."""
    if len(header) != 1:
        return ""
    for sep, flag in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if sep != delimiter and sep in header[0]:
            return f"; the header is one column containing {sep!r}: is the delimiter {flag}? try --delimiter {flag}"
    return ""


def headerless(
    width: int,
    name: str,
    id_column: str | None,
    text_column: str | None,
    delimiter: str = ",",
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> Layout:
    """The layout of a file without a header, whose rows have ``width`` fields.

    The text is the last column and the id the first when there are two or
    more; ``text_column`` / ``id_column`` choose others by 1-based number.
    """

    def column(value: str, flag: str) -> int:
        if not value.isdigit() or not 1 <= int(value) <= width:
            raise InputFileError(
                f"{name}: {flag} {value!r}: without a header, columns are numbers from 1 to {width} "
                f"(the first row has {width} field{'s' if width != 1 else ''})"
            )
        return int(value) - 1

    text_idx = width - 1 if text_column in (None, "text") else column(text_column, "--text-column")
    if id_column not in (None, "id"):
        id_idx: int | None = column(id_column, "--id-column")
    else:
        id_idx = 0 if width >= 2 and text_idx != 0 else None
    return Layout(name, f"column {text_idx + 1}", text_idx, id_idx, width, delimiter, max_field_chars)


class Record(NamedTuple):
    """One parsed record. Numbers count from the start of the parse; ``id`` is None when it is the
    row number; ``reason`` (why the row is an error) may hold "{where}", see :func:`locate`."""

    number: int
    first_line: int
    last_line: int
    id: str | None
    text: object
    reason: str | None


class Parsed(NamedTuple):
    """What one chunk held: its records, lines, blank lines; whether it ended inside a quoted field
    (``open_end``: parse it again joined to the next chunk); a fatal :class:`RecordError`."""

    records: list[Record]
    lines: int
    blank: int
    open_end: bool = False
    fatal: RecordError | None = None


def parse_records(
    reader: Any,
    record: list[str],
    layout: Layout,
    stats: ReadStats,
    last: list[str] | None = None,
) -> Iterator[Record]:
    """The data rows after the header, numbered from the parse start.

    A row whose structure is wrong (quoting, field count) carries the reason;
    the text of the others is checked by the caller (:func:`edgeclf.texts.text_error`).
    ``last``, when given, ends up holding the raw lines of the last record (to
    tell whether a chunk ended inside a quoted field).
    """
    number = 0
    last_line = reader.line_num
    line0 = last_line
    record.clear()
    width, text_idx, id_idx = layout.width, layout.text_idx, layout.id_idx
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise RecordError(
                reader.line_num - line0, number, _csv_error(exc, layout.max_field_chars)
            ) from None
        first_line, last_line = last_line + 1, reader.line_num
        problem = None
        if record and (
            len(record) > 1
            or not record[-1].endswith(("\n", "\r"))  # the last line of the file
            or (fields and fields[-1].endswith(("\n", "\r")))  # a quote still open at the end of the file
        ):
            problem = _quoting_problem(record, layout.delimiter)
        if last is not None:
            last[:] = record
        record.clear()
        if not fields:
            stats.blank_lines += 1
            continue
        number += 1
        rid = fields[id_idx] if id_idx is not None and id_idx < len(fields) else None
        reason = text = None
        if problem == "unterminated":
            span = last_line - first_line + 1
            swallowed = f", so {span} lines ({{where}}) were read as one row" if span > 1 else ""
            reason = (
                ": unterminated quote: a quoted field is still open at the end "
                f'of the file{swallowed}; close the quote (write a quote inside a quoted field as "")'
            )
        elif problem is not None:
            reason = (
                f": malformed quoting ({problem}) in a row spanning {{where}}: "
                "an unbalanced quote may have merged several rows into this one"
            )
        elif len(fields) != width:
            reason = f" has {len(fields)} fields, header has {width}"
            reason += (
                " (missing columns)"
                if len(fields) < width
                else " (extra columns: an unquoted delimiter in the text?)"
            )
        else:
            text = fields[text_idx]
        yield Record(number, first_line - line0, last_line - line0, rid, text, reason)


def locate(number: int, first_line: int, last_line: int, reason: str) -> str:
    """The error message of a row: ``row N (line L)`` or ``row N (lines A-B)`` and the reason."""
    where = f"line {last_line}" if first_line == last_line else f"lines {first_line}-{last_line}"
    return f"row {number} ({where})" + reason.replace("{where}", where)


def text_reason(why: str, column: str) -> str:
    """A row's reason from :func:`edgeclf.texts.text_error`'s, naming the column for invalid bytes."""
    return f": {why} in {column!r}" if why.startswith("invalid bytes") else f": {why}"


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
    record: list[str] = []  # raw lines of the record being parsed
    reader = csv_reader(fh, record, delimiter, max_field_chars)
    layout = read_header(
        reader,
        stats,
        name=name,
        id_column=id_column,
        text_column=text_column,
        id_required=id_required,
        delimiter=delimiter,
        max_field_chars=max_field_chars,
    )
    dup = DuplicateIds(stats) if layout.id_idx is not None else None
    off = reader.line_num  # parse_records counts lines after the header
    try:
        for number, first, last, rid, text, reason in parse_records(reader, record, layout, stats):
            stats.rows = number
            if dup is not None and rid is not None:
                dup.add(rid)
            why = text_error(text) if reason is None else None
            if why is not None:
                reason, text = text_reason(why, layout.text_column), None
            error = reason and locate(number, first + off, last + off, reason)
            yield Row(number, last + off, str(number) if rid is None else rid, text, error, first + off)
    except RecordError as exc:
        raise InputFileError(f"{name}: {exc.input_error(off)}") from None


class DuplicateIds:
    """Counts repeated ids into ``stats``, remembering at most DUPLICATE_ID_WINDOW of them."""

    def __init__(self, stats: ReadStats) -> None:
        self.stats = stats
        self.seen: set[str] = set()

    def add(self, rid: str) -> None:
        if rid in self.seen:
            self.stats.duplicate_ids += 1
        elif len(self.seen) < DUPLICATE_ID_WINDOW:
            self.seen.add(rid)
        else:
            self.stats.duplicate_window_full = True


def _csv_error(exc: csv.Error, max_field_chars: int) -> str:
    """The csv module's message, explaining the field limit (an open quote is the usual cause)."""
    if "field limit" in str(exc):
        return (
            f"a field is longer than {max_field_chars:,} characters "
            "(an unterminated quote that swallowed the rest of the file?)"
        )
    return str(exc)
