"""Cutting an input stream into chunks of whole records, for parsing in worker processes.

JSON Lines records never span lines, so any line end is a boundary there
(``quoting=False``). CSV is the hard case:

A chunk boundary is only right where csv's parser would start a new record:
after a line end that is not inside a quoted field. Finding that exactly
means parsing everything before it, which is the work to hand out. So the
cut is a guess that is checked afterwards:

- :func:`cut_chunks` cuts after a line end where the chunk so far holds an
  even number of quote characters. In a file whose quotes all open/close
  quoted fields or are doubled inside them (what every CSV writer produces),
  that is exactly "outside a quoted field". A stray quote inside an unquoted
  field (``a 5" screen``) can mislead it.
- The worker that parses a chunk, starting from a correct boundary, asks
  :func:`open_at_end` whether its last record ended inside a quoted field. If
  so, the next boundary was wrong: the pipeline joins the two chunks and
  parses them again (and so on), so the rows out are those of one parse of
  the whole file, whatever the guesses.

Cuts are never between ``\\r`` and ``\\n``, and never inside a UTF-8
character (they follow a line-end byte).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import AnyStr

#: A quoted field's content after its opening quote: anything but a quote, or a doubled quote.
_QUOTED = re.compile(r'[^"]*(?:""[^"]*)*')


@lru_cache(maxsize=8)
def _unquoted(delimiter: str) -> re.Pattern[str]:
    return re.compile(f"[^{re.escape(delimiter)}\r\n]*")


def open_at_end(text: str, delimiter: str = ",") -> bool:
    """Whether csv's lenient parser, starting a record at ``text[0]``, ends ``text`` inside quotes.

    Mirrors the states of CPython's ``_csv.c`` (default dialect, doublequote,
    not strict): a quote opens a quoted field only at the start of a field;
    after the closing quote, other characters run on as an unquoted field.
    """
    unquoted = _unquoted(delimiter)
    i, n = 0, len(text)
    while i < n:  # at the start of a field
        c = text[i]
        if c == '"':
            j = _QUOTED.match(text, i + 1).end()  # type: ignore[union-attr]
            if j >= n:
                return True  # the quote never closed
            i = j + 1  # after the closing quote
            if i >= n:
                return False
            c = text[i]
            if c != delimiter and c not in "\r\n":
                i = unquoted.match(text, i).end()  # type: ignore[union-attr]
        elif c != delimiter and c not in "\r\n":
            i = unquoted.match(text, i).end()  # type: ignore[union-attr]
        if i >= n or text[i] in "\r\n":
            return False  # the record ended outside quotes
        i += 1  # past the delimiter
    return False


def cut_chunks(
    read: Callable[[int], AnyStr], target: int, max_lines: int, quoting: bool = True
) -> Iterator[tuple[AnyStr, bool]]:
    """``(chunk, is_last)`` pairs covering everything ``read`` returns, in order.

    Chunks are about ``target`` bytes (characters for text streams) and at
    most ``max_lines`` lines where a boundary can be found; a record longer
    than that makes its chunk longer. ``quoting=False``: records are lines
    (JSON Lines), quotes mean nothing.
    """
    block = max(target, 1 << 16)
    buf = read(block)
    eof = not buf
    while buf:
        while len(buf) < target and not eof:
            more = read(block)
            eof = not more
            buf += more
        cut = find_cut(buf, target, max_lines, eof, quoting)
        if cut == 0:
            if eof:
                yield buf, True
                return
            more = read(block)
            eof = not more
            buf += more
            continue
        chunk, buf = buf[:cut], buf[cut:]
        if not buf and not eof:
            buf = read(block)
            eof = not buf
        yield chunk, not buf


def find_cut(buf: AnyStr, target: int, max_lines: int, eof: bool = False, quoting: bool = True) -> int:
    """Where to end the next chunk (0: nowhere yet, read more)."""
    nl, cr, quote = ("\n", "\r", '"') if isinstance(buf, str) else (b"\n", b"\r", b'"')

    def count(start: int, end: int) -> int:  # quote characters in buf[start:end] (none when not quoting)
        return buf.count(quote, start, end) if quoting else 0

    n = len(buf)
    sep = nl if buf.find(nl) >= 0 or buf.find(cr) < 0 else cr  # old Mac files end lines with \r only

    def cuttable(p: int) -> bool:  # after a lone \r only when the next character is known and not \n
        return sep == nl or (p + 1 < n and buf[p + 1 : p + 2] != nl) or (eof and p + 1 == n)

    limit = min(n, target)
    if buf.count(sep, 0, limit) > max_lines:
        p = -1
        for _ in range(max_lines):
            p = buf.find(sep, p + 1)
        limit = p + 1
    # backwards from the limit (not below half of it) to an even number of quotes
    p = buf.rfind(sep, 0, limit)
    quotes = count(0, p + 1)
    while p >= 0 and p + 1 > limit // 2:
        if quotes % 2 == 0 and cuttable(p):
            return p + 1
        prev = buf.rfind(sep, 0, p)
        quotes -= count(prev + 1, p + 1)
        p = prev
    # forwards past the limit (a long record, or a stray quote earlier in the chunk)
    p = buf.rfind(sep, 0, limit)
    quotes = count(0, p + 1)
    while True:
        nxt = buf.find(sep, p + 1)
        if nxt < 0:
            break
        quotes += count(p + 1, nxt + 1)
        p = nxt
        if quotes % 2 == 0 and cuttable(p):
            return p + 1
    if n >= 4 * target or eof:  # no even cut: guess at the last line end, the worker checks it
        p = buf.rfind(sep)
        while p >= 0 and not cuttable(p):
            p = buf.rfind(sep, 0, p)
        return p + 1 if p >= 0 else 0
    return 0
