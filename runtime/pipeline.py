"""The row pipeline: rows in -> chunks -> predictions -> rows out, errors kept in place.

One implementation for every front end: ``edgeclf predict`` (CSV files),
``edgeclf serve`` and the Spark integration. The pieces they share:

- :func:`text_error` ``(text, max_chars) -> str | None``: why one text cannot
  be classified (``None``: it can). Null or non-string values, invalid bytes
  for the input encoding, empty or whitespace-only text, more than
  ``max_chars`` characters. Import it to validate a request field or a Spark
  column value with the same rules and wording as the CLI.
- :func:`classify_texts` ``(clf, texts, max_chars) -> (probabilities, errors)``:
  a list of texts through the classifier, bad ones answered by an error
  (their probability row is NaN) instead of failing the batch; order kept.
- :func:`predict_csv`: the streaming CSV pipeline behind ``edgeclf predict``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np

from .classifier import DEFAULT_MAX_CHARS, Classifier
from .csvio import AtomicOutput, InputFileError, ReadStats, ResultWriter, open_text, read_rows

#: Characters of text per chunk: with rows alone as the bound, 4,096 rows of
#: 10 MB reviews would be 40 GB in memory; this keeps a chunk near one big field.
CHUNK_CHARS = 8_000_000


def text_error(
    text: object, max_chars: int | None = DEFAULT_MAX_CHARS, *, limit_name: str = "max_chars"
) -> str | None:
    """Why ``text`` cannot be classified, or ``None`` when it can.

    The reasons, checked in this order: not a string (``None``: "no text"),
    invalid bytes for the input encoding (undecodable bytes read with
    ``surrogateescape`` become lone surrogates), empty or only whitespace,
    longer than ``max_chars`` characters (``None``: no limit). ``limit_name``
    names the limit in the message (the CLI says ``--max-chars``).
    """
    if not isinstance(text, str):
        return "no text" if text is None else f"expected a string, got {type(text).__name__}"
    if not text.isascii() and _has_surrogates(text):
        return "invalid bytes for the input encoding"
    if not text.strip():
        return "empty text"
    if max_chars is not None and len(text) > max_chars:
        return f"text has {len(text):,} characters, over {limit_name} {max_chars:,}"
    return None


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def classify_texts(
    clf: Classifier, texts: Sequence[object], max_chars: int | None = None
) -> tuple[np.ndarray, list[str | None]]:
    """Probabilities ``(n, n_labels)`` and one error (or None) per text, in input order.

    Texts that :func:`text_error` refuses get a NaN probability row and their
    reason; the others are classified together. ``max_chars`` defaults to the
    classifier's own limit.
    """
    limit = clf.max_chars if max_chars is None else max_chars
    errors = [text_error(t, limit) for t in texts]
    probs = np.full((len(texts), len(clf.labels)), np.nan, dtype=np.float32)
    good = [i for i, e in enumerate(errors) if e is None]
    if good:
        probs[good] = clf.predict_proba([texts[i] for i in good])  # type: ignore[misc]
    return probs, errors


# --------------------------------------------------------------------- CSV files


@dataclass
class CsvOptions:
    """What ``edgeclf predict`` asks of one CSV run (the CLI flags)."""

    input: str = "-"
    output: str = "-"
    fmt: str = "csv"
    id_column: str | None = None
    text_column: str = "text"
    delimiter: str = ","
    encoding: str = "utf-8"
    label_format: str = "name"
    probabilities: bool = False
    errors: str = "report"
    chunk_rows: int = 4096
    max_chars: int = DEFAULT_MAX_CHARS


@dataclass
class CsvSummary:
    rows: int = 0
    errors: int = 0
    seconds: float = 0.0
    stats: ReadStats = field(default_factory=ReadStats)


def chunks(rows: Iterable, size: int, max_chars: int = CHUNK_CHARS) -> Iterator[list]:
    """Rows in chunks of ``size`` rows or about ``max_chars`` characters of text, whichever comes first."""
    chunk: list = []
    chars = 0
    for row in rows:
        chunk.append(row)
        if row.text is not None:
            chars += len(row.text)
        if len(chunk) >= size or chars >= max_chars:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def predict_csv(clf: Classifier, opts: CsvOptions, progress: Any = None) -> CsvSummary:
    """Classify every row of ``opts.input`` into ``opts.output``; see edgeclf.csvio for the promise."""
    started = time.perf_counter()
    labels = clf.labels
    summary = CsvSummary()
    stats = summary.stats
    name = "<stdin>" if opts.input == "-" else opts.input
    with open_text(opts.input, opts.encoding) as fh:
        if progress is not None:
            progress.attach(fh)
        rows = read_rows(
            fh,
            name=name,
            id_column=opts.id_column or "id",
            text_column=opts.text_column,
            id_required=opts.id_column is not None,
            stats=stats,
            delimiter=opts.delimiter,
        )
        first = list(islice(rows, 1))  # header problems surface before any output exists
        with AtomicOutput(opts.output, refuse=[opts.input]) as out:
            writer = ResultWriter(out, fmt=opts.fmt, labels=labels, probabilities=opts.probabilities)
            done = 0
            for chunk in chunks(_chain(first, rows), opts.chunk_rows):
                for r in chunk:
                    if r.error is None:
                        reason = text_error(r.text, opts.max_chars, limit_name="--max-chars")
                        if reason is not None:
                            r.error = f"row {r.number} (line {r.line}): {reason}"
                            r.text = None
                good = [r for r in chunk if r.error is None]
                probs = clf.predict_proba([r.text for r in good]) if good else None
                k = 0
                for r in chunk:
                    if r.error is not None:
                        summary.errors += 1
                        if opts.errors == "abort":
                            raise InputFileError(f"{name}: {r.error} (--errors abort: nothing written)")
                        writer.write(r.id, None, None, None, r.error)
                        continue
                    p = probs[k]
                    k += 1
                    j = int(p.argmax())
                    writer.write(r.id, labels[j] if opts.label_format == "name" else j, float(p[j]), p, None)
                done += len(chunk)
                if progress is not None:
                    progress.update(done)
        if progress is not None:
            progress.close()
    summary.rows = stats.rows
    summary.seconds = time.perf_counter() - started
    return summary


def _chain(first: list, rest: Iterable) -> Iterator:
    yield from first
    yield from rest
