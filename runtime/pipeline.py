"""The file pipeline behind ``edgeclf predict``: records in -> chunks -> predictions -> rows out.

It composes the row path's parts, each of which does one thing:
:mod:`edgeclf.source` opens the input and reads its header,
:mod:`edgeclf.chunking` cuts the stream into chunks of whole records,
:mod:`edgeclf.csvio` / :mod:`edgeclf.jsonl` parse a chunk into records,
:mod:`edgeclf.texts` checks and classifies the texts (the same rule and result
as the Python API, serve and Spark), :mod:`edgeclf.workers` runs chunks in
worker processes in input order, and :mod:`edgeclf.output` writes the rows
atomically.

How it uses several cores (``jobs``): the main process reads the file and
cuts it into chunks, worker processes each parse, validate, tokenize,
classify and format a chunk (:class:`ChunkWorker`), and the main process
writes the results in input order, adding what only it knows (row and line
numbers, duplicate ids). At most ``2 * jobs`` chunks are in flight, so
memory stays flat for any file size. Every chunk, with or without workers,
goes through the same :class:`ChunkWorker`, so the output is byte for byte
the same for every ``jobs``.

What crosses between processes: chunks of the input as ``bytes`` (or
``str`` for other encodings than UTF-8) going out, and strings and tuples
of the output coming back. multiprocessing pickles them; the pickle streams
are written and read by our own processes over an inherited pipe. The
input's bytes are only ever payload inside those streams, never unpickled
themselves.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from . import workers
from .csvio import DuplicateIds, Layout, ReadStats, RecordError, locate, text_reason
from .jsonl import JsonlLayout
from .output import AtomicOutput, ResultWriter
from .source import Source, is_utf8
from .texts import DEFAULT_MAX_CHARS, InputFileError, Prediction, classify_texts, refused

if TYPE_CHECKING:
    from .classifier import Classifier

#: tried in this order on a row that is not UTF-8 (every byte string is valid latin-1: it proves nothing)
LIKELY_ENCODINGS = ("gb18030", "cp1252")


@dataclass
class ModelSpec:
    """How to load the classifier (in this process or in each worker)."""

    model: str = "keras-imdb"
    variant: str | None = None
    providers: str = "auto"
    threads: int | None = None
    batch_size: int | None = None  # None: the classifier's default for the bundle
    max_chars: int = DEFAULT_MAX_CHARS
    long_texts: str | None = None  # None: the bundle's choice

    def load(self, threads: int | None = None) -> Classifier:
        from .classifier import load

        return load(
            self.model,
            variant=self.variant,
            providers=self.providers,
            threads=self.threads if self.threads is not None else threads,
            max_chars=self.max_chars,
            batch_size=self.batch_size,
            long_texts=self.long_texts,
        )


@dataclass
class CsvOptions:
    """What ``edgeclf predict`` asks of one run (the command line's options)."""

    input: str = "-"
    output: str = "-"
    fmt: str = "csv"  # output format
    input_format: str = "csv"  # "csv" or "jsonl"
    header: bool = True  # CSV: the first row names the columns
    id_column: str | None = None
    text_column: str = "text"
    delimiter: str = ","
    encoding: str = "utf-8"
    label_format: str = "name"
    probabilities: bool = False
    errors: str = "report"
    chunk_rows: int = 4096
    #: bytes per chunk; default: 1 MiB for fixed-width models, 256 KiB for models padded to the
    #: longest text (slow per row: more chunks share the work out evenly). Never depends on jobs:
    #: chunks make the batches, and the same batches give the same numbers.
    chunk_bytes: int | None = None
    jobs: int | None = None  # None: workers.default_jobs() on the CPU, 1 with an accelerator


@dataclass
class CsvSummary:
    rows: int = 0
    errors: int = 0
    seconds: float = 0.0
    model: str = ""
    variant: str = ""
    provider: str = ""  # what ran: "CPU", "CUDA" ...
    jobs: int = 1
    stats: ReadStats = field(default_factory=ReadStats)
    #: rows refused for bytes that are not valid in the input encoding, and an encoding they decode in
    bad_bytes: int = 0
    encoding_hint: str | None = None
    windows: Windows | None = None  # texts read in windows, when the model read any that way


class Chunk(NamedTuple):
    data: bytes | str
    last: bool


class Pending(NamedTuple):
    """A row the main process writes itself: it knows the row and line numbers (errors, row-number ids)."""

    number: int
    first_line: int
    last_line: int
    id: str | None
    prediction: Prediction


class Windows(NamedTuple):
    """Texts read in windows (``--long-texts windows``) and how many windows they made."""

    texts: int = 0
    windows: int = 0
    most: int = 0  # windows of the text with the most

    def __add__(self, other: object) -> Windows:  # type: ignore[override]
        assert isinstance(other, Windows)
        return Windows(self.texts + other.texts, self.windows + other.windows, max(self.most, other.most))


class ChunkResult(NamedTuple):
    rows: int = 0  # data rows parsed
    lines: int = 0  # physical lines read
    blank: int = 0
    open_end: bool = False  # ended inside a quoted field: parse again joined to the next chunk
    ids: list | None = None  # per row, for the duplicate count
    parts: tuple | list = ()  # output text, and Pending rows
    fatal: RecordError | None = None
    bad_bytes: int = 0
    encoding_hint: str | None = None
    windows: Windows | None = None


def guess_encoding(text: str) -> str | None:
    """An encoding the raw bytes of a row (decoded with surrogateescape) are valid in, or None."""
    raw = text.encode("utf-8", "surrogateescape")
    for encoding in LIKELY_ENCODINGS:
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return None


class ChunkWorker:
    """Parse, validate, classify and format one chunk (in any process)."""

    def __init__(
        self, spec: ModelSpec, layout: Layout | JsonlLayout, opts: CsvOptions, threads: int | None
    ) -> None:
        self.spec, self.layout, self.opts, self.threads = spec, layout, opts, threads
        self.clf: Classifier | None = None
        self.utf8 = is_utf8(opts.encoding)
        self.counter: Any = None  # edgeclf.progress counts: rows and input bytes done
        self.windows: Windows | None = None  # of the chunk being classified

    def __call__(self, chunk: Chunk) -> ChunkResult:
        data, last = chunk
        text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
        parsed = self.layout.parse(text, last)
        if parsed.fatal is not None or parsed.open_end:
            return ChunkResult(0, parsed.lines, parsed.blank, parsed.open_end, fatal=parsed.fatal)
        if self.clf is None:
            self.clf = self.spec.load(self.threads)
        records = parsed.records
        texts = [r.text for r in records if r.reason is None]
        row_bytes = len(data) / max(len(records), 1)
        self.windows = None
        predictions = classify_texts(
            self.clf,
            texts,
            max_chars=self.spec.max_chars,
            limit_name="--max-chars",
            predict_proba=lambda good: self._proba(good, row_bytes),
        )
        refused_rows = len(records) - sum(p.error is None for p in predictions)  # counted here, not per run
        results = iter(predictions)
        out = io.StringIO()
        writer = self._writer(out)
        parts: list = []
        bad = 0
        hint = None
        for r in records:
            pred = refused(r.reason) if r.reason is not None else next(results)
            if r.reason is None and pred.error is not None:
                if pred.error.startswith("invalid bytes"):
                    bad += 1
                    if self.utf8:  # other encodings mix decoded text with the raw bytes
                        hint = hint or guess_encoding(r.text)  # type: ignore[arg-type]
                pred = refused(text_reason(pred.error, self.layout.text_column))
            if pred.error is None and r.id is not None:
                writer.write(r.id, pred)
                continue
            if out.tell():
                parts.append(out.getvalue())
                out.seek(0)
                out.truncate()
            parts.append(Pending(r.number, r.first_line, r.last_line, r.id, pred))
        if out.tell():
            parts.append(out.getvalue())
        if self.counter is not None and refused_rows:
            self.counter.add(refused_rows, refused_rows * row_bytes)
        ids = [r.id for r in records] if self.layout.has_ids else None
        return ChunkResult(
            len(records), parsed.lines, parsed.blank, False, ids, parts, None, bad, hint, self.windows
        )

    def _proba(self, texts: list[str], row_bytes: float) -> Any:
        """``predict_proba``'s own path (the same batches, hence the same numbers), counting
        progress after every ONNX run: a bar that moves within a chunk of long texts."""
        clf, counter = self.clf, self.counter
        assert clf is not None
        enc = clf.encode_texts(texts)
        if enc.owner is not None:  # read in windows: count them for the summary
            self.windows = Windows(len(texts), len(enc.ids), int(enc.windows_per_text(len(texts)).max()))
        if counter is None:
            return clf.proba_from_encoded(enc, len(texts))
        share = len(texts) / max(len(enc.ids), 1)  # with windows, a text is several rows

        def progress(rows: int) -> None:
            counter.add(rows * share, rows * share * row_bytes)

        return clf.proba_from_encoded(enc, len(texts), progress=progress)

    def _writer(self, out: io.StringIO) -> ResultWriter:
        clf = self.clf
        assert clf is not None
        return ResultWriter(
            out,
            fmt=self.opts.fmt,
            labels=clf.labels,
            probabilities=self.opts.probabilities,
            header=False,
            label_format=self.opts.label_format,
            multi_label=clf.manifest.head.kind == "multi_label",
        )


def predict_file(spec: ModelSpec, opts: CsvOptions, progress: Any = None) -> CsvSummary:
    """Classify every record of ``opts.input`` into ``opts.output``; see edgeclf.csvio for the promise.

    ``progress`` (edgeclf.progress.Progress) is told the input size and fed
    rows and bytes done, from every process.
    """
    from . import bundle
    from .session import select

    started = time.perf_counter()
    manifest = bundle.open_bundle(spec.model).manifest
    # what each process will load (a missing provider fails here, before any output); importing
    # onnxruntime starts no thread (telemetry off), so workers can still be forked
    providers, variant = select(manifest, spec.providers, spec.variant)
    summary = CsvSummary(
        model=manifest.name,
        variant=manifest.variant(variant).name,
        provider=providers[0].removesuffix("ExecutionProvider"),
    )
    name = "<stdin>" if opts.input == "-" else opts.input
    with Source(opts.input, opts.encoding) as src:
        layout, line_off = _layout(src, opts, summary.stats, name)
        chunk_bytes = opts.chunk_bytes or (1024 if manifest.padding == "max_length" else 256) * 1024
        chunks = (Chunk(*c) for c in _cut(src, opts, chunk_bytes))
        first = next(chunks, None)
        jobs = opts.jobs or (workers.default_jobs() if providers[0] == "CPUExecutionProvider" else 1)
        if first is None or first.last:
            jobs = 1  # one chunk: no workers to start
        if src.size:  # no more workers than chunks
            jobs = max(1, min(jobs, -(-src.size // chunk_bytes)))
        worker = ChunkWorker(
            spec, layout, opts, None if jobs == 1 else max(1, workers.default_jobs() // jobs)
        )
        ctx = workers.mp_context() if jobs > 1 else None
        if progress is not None:
            worker.counter = progress.start(src.size, ctx) if ctx is not None else progress.start(src.size)
        summary.jobs = jobs
        stream = itertools.chain([first] if first is not None else [], chunks)
        try:
            with workers.Pool(worker, jobs, ctx) as pool:
                _write(_results(pool, stream, 2 * jobs), opts, manifest, layout, summary, name, line_off)
        finally:
            if progress is not None:
                progress.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _layout(src: Source, opts: CsvOptions, stats: ReadStats, name: str) -> tuple[Layout | JsonlLayout, int]:
    if opts.input_format == "jsonl":
        src.skip_bom()
        return JsonlLayout(name, opts.text_column, opts.id_column or "id", opts.id_column is not None), 0
    return src.header(
        stats,
        name=name,
        id_column=opts.id_column if not opts.header else opts.id_column or "id",
        text_column=opts.text_column,
        id_required=opts.id_column is not None,
        delimiter=opts.delimiter,
        header_row=opts.header,
    )


def _cut(src: Source, opts: CsvOptions, chunk_bytes: int) -> Iterator[tuple[Any, bool]]:
    from .chunking import cut_chunks

    return cut_chunks(src.read, chunk_bytes, opts.chunk_rows, quoting=opts.input_format != "jsonl")


def _write(
    results: Iterator[ChunkResult],
    opts: CsvOptions,
    manifest: Any,
    layout: Layout | JsonlLayout,
    summary: CsvSummary,
    name: str,
    line_off: int,
) -> None:
    """Write every chunk's rows in order, finishing the rows only the main process can."""
    dup = DuplicateIds(summary.stats) if layout.has_ids else None
    row_off = 0
    with AtomicOutput(opts.output, refuse=[opts.input]) as out:
        writer = ResultWriter(
            out,
            fmt=opts.fmt,
            labels=manifest.labels,
            probabilities=opts.probabilities,
            label_format=opts.label_format,
            multi_label=manifest.head.kind == "multi_label",
        )
        for res in results:
            if res.fatal is not None:
                raise InputFileError(f"{name}: {res.fatal.input_error(line_off, row_off)}")
            if dup is not None:
                for rid in res.ids or ():
                    if rid is not None:
                        dup.add(rid)
            for part in res.parts:
                if isinstance(part, str):
                    out.write(part)
                    continue
                number, pred = part.number + row_off, part.prediction
                if pred.error is not None:
                    error = locate(number, part.first_line + line_off, part.last_line + line_off, pred.error)
                    pred = refused(error)
                    summary.errors += 1
                    if opts.errors == "abort":
                        raise InputFileError(f"{name}: {error} (--errors abort: nothing written)")
                writer.write(str(number) if part.id is None else part.id, pred)
            row_off += res.rows
            line_off += res.lines
            summary.stats.blank_lines += res.blank
            summary.bad_bytes += res.bad_bytes
            summary.encoding_hint = summary.encoding_hint or res.encoding_hint
            if res.windows is not None:
                summary.windows = res.windows if summary.windows is None else summary.windows + res.windows
    summary.rows = summary.stats.rows = row_off


def _results(pool: workers.Pool, chunks: Iterator[Chunk], depth: int) -> Iterator[ChunkResult]:
    """Every chunk's result in input order; a chunk that ended inside quotes is parsed again
    joined to the next one (whose own parse, begun inside a quoted field, is dropped)."""
    stream = workers.ordered_map(pool, chunks, depth)
    for chunk, res in stream:
        while res.open_end:
            following, _ = next(stream)
            chunk = Chunk(chunk.data + following.data, following.last)
            res = pool.submit(chunk).result()
        yield res


__all__ = ["ChunkWorker", "CsvOptions", "CsvSummary", "ModelSpec", "predict_file"]
