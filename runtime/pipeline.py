"""The row pipeline: rows in -> chunks -> predictions -> rows out, errors kept in place.

One implementation for every front end: ``edgeclf predict`` (CSV files),
``edgeclf serve`` and the Spark integration. What they share:

- :func:`text_error` ``(text, max_chars) -> str | None``: why one text cannot
  be classified (``None``: it can): null or not a string, invalid bytes for
  the input encoding, empty or whitespace only, over ``max_chars``
  characters. Import it to check a request field or a Spark column value with
  the same rules and wording as the CLI. Imports nothing heavy.
- :func:`classify_texts` ``(clf, texts) -> (probabilities, errors)``: texts
  through a :class:`~edgeclf.Classifier`, bad ones answered by their reason
  (and a NaN row) instead of failing the batch; order kept.
- :func:`predict_csv`: the streaming CSV pipeline behind ``edgeclf predict``.

How :func:`predict_csv` uses several cores (``jobs``): the main process reads
the file and cuts it into chunks of whole records (edgeclf.chunking), worker
processes each parse, validate, tokenize, classify and format a chunk, and
the main process writes the results in input order, adding what only it
knows (row and line numbers, duplicate ids). At most ``2 * jobs`` chunks are
in flight, so memory stays flat for any file size. Every chunk, with or
without workers, goes through the same :class:`ChunkWorker`, so the output
is byte for byte the same for every ``jobs``.

What crosses between processes: chunks of the input as ``bytes`` objects
(or ``str`` for non-UTF-8 encodings) going out, and strings, lists and
tuples of the output coming back. multiprocessing pickles them; the pickle
streams are written by our own processes and read by our own processes
over an inherited pipe. The input's bytes are only ever payload inside those
streams, never unpickled themselves. The processes themselves (start method,
pool initializer, exiting with a killed parent) are edgeclf.workers.
"""

from __future__ import annotations

import io
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import workers

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import numpy as np

    from .classifier import Classifier
    from .csvio import Layout, ReadStats


def text_error(text: object, max_chars: int | None = None, *, limit_name: str = "max_chars") -> str | None:
    """Why ``text`` cannot be classified, or ``None`` when it can.

    Checked in this order: not a string (``None``: "no text"), invalid bytes
    for the input encoding (bytes decoded with ``surrogateescape`` become
    lone surrogates), empty or only whitespace, longer than ``max_chars``
    characters (``None``: no limit). ``limit_name`` names the limit in the
    message (the CLI says ``--max-chars``).
    """
    if not isinstance(text, str):
        return "no text" if text is None else f"expected a string, got {type(text).__name__}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "invalid bytes for the input encoding"
    if not text.strip():
        return "empty text"
    if max_chars is not None and len(text) > max_chars:
        return f"text has {len(text):,} characters, over {limit_name} {max_chars:,}"
    return None


def classify_texts(
    clf: Classifier, texts: Sequence[object], max_chars: int | None = None
) -> tuple[np.ndarray, list[str | None]]:
    """Probabilities ``(n, n_labels)`` and one error (or None) per text, in input order.

    Texts that :func:`text_error` refuses get a NaN row and their reason; the
    others are classified together. ``max_chars`` defaults to the classifier's.
    """
    import numpy as np

    limit = clf.max_chars if max_chars is None else max_chars
    errors = [text_error(t, limit) for t in texts]
    probs = np.full((len(texts), len(clf.labels)), np.nan, dtype=np.float32)
    good = [i for i, e in enumerate(errors) if e is None]
    if good:
        probs[good] = clf.predict_proba([texts[i] for i in good])  # type: ignore[misc]
    return probs, errors


# --------------------------------------------------------------------- CSV files


@dataclass
class ModelSpec:
    """How to load the classifier (in this process or in each worker)."""

    model: str = "keras-imdb"
    variant: str | None = None
    providers: str = "auto"
    threads: int | None = None
    batch_size: int | None = None
    max_chars: int | None = None

    def load(self, threads: int | None = None) -> Classifier:
        from .classifier import DEFAULT_MAX_CHARS, load

        kwargs = {"batch_size": self.batch_size} if self.batch_size else {}
        clf = load(
            self.model,
            variant=self.variant,
            providers=self.providers,
            threads=self.threads if self.threads is not None else threads,
            max_chars=self.max_chars or DEFAULT_MAX_CHARS,
            **kwargs,
        )
        if not self.batch_size and clf.manifest.padding == "max_length":
            clf.batch_size = 256  # fixed-width inputs: bigger batches only amortise overhead
        return clf


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
    stats: ReadStats = field(default_factory=lambda: _stats())


def _stats() -> ReadStats:
    from .csvio import ReadStats

    return ReadStats()


@dataclass
class ChunkResult:
    rows: int = 0  # data rows parsed
    lines: int = 0  # physical lines read
    blank: int = 0
    open_end: bool = False  # ended inside a quoted field: parse again joined to the next chunk
    ids: list | None = None  # per row, for the duplicate count
    parts: list = field(default_factory=list)  # output text, and rows that need the main process
    fatal: Any = None  # csvio.RecordError


class ChunkWorker:
    """Parse, validate, tokenize, classify and format one chunk (in any process)."""

    def __init__(self, spec: ModelSpec, layout: Layout, opts: CsvOptions, threads: int | None) -> None:
        self.spec, self.layout, self.opts, self.threads = spec, layout, opts, threads
        self.clf: Classifier | None = None
        self.counter: Any = None  # edgeclf.progress counts: rows and input bytes done

    def _classify(self, texts: list[str], row_bytes: float) -> np.ndarray:
        """``clf.predict_proba(texts)`` one batch at a time, counting progress after each.

        The batches are the ones ``predict_proba`` forms (``Classifier.batches``),
        so the numbers are the same.
        """
        import numpy as np

        clf = self.clf
        assert clf is not None
        ids = clf.tokenizer.encode_batch(texts)
        probs = np.empty((len(ids), len(clf.labels)), dtype=np.float32)
        for idx in clf.batches(ids):
            probs[idx] = clf.proba_from_ids([ids[i] for i in idx])
            if self.counter is not None:
                self.counter.add(len(idx), len(idx) * row_bytes)
        return probs

    def __call__(self, data: bytes | str, last: bool) -> ChunkResult:
        from .chunking import open_at_end
        from .csvio import ReadStats, RecordError, ResultWriter, csv_reader, parse_records

        if self.clf is None:
            self.clf = self.spec.load(self.threads)
        clf, layout, opts = self.clf, self.layout, self.opts
        text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
        res = ChunkResult()
        record: list[str] = []
        final_lines: list[str] = []
        reader = csv_reader(io.StringIO(text, newline=""), record, layout.delimiter, layout.max_field_chars)
        stats = ReadStats()
        limits = {"max_chars": self.spec.max_chars, "limit_name": "--max-chars"}
        try:
            rows = list(parse_records(reader, record, layout, stats, final_lines, **limits))
        except RecordError as exc:
            res.fatal = exc
            return res
        res.rows, res.lines, res.blank = len(rows), reader.line_num, stats.blank_lines
        if not last and open_at_end("".join(final_lines), layout.delimiter):
            res.open_end = True
            return res
        if layout.id_idx is not None:
            res.ids = [r[3] for r in rows]
        good = [r[4] for r in rows if r[5] is None]
        labels = clf.labels
        row_bytes = len(data) / max(len(rows), 1)
        if good:
            probs = self._classify(good, row_bytes)
            best = probs.argmax(axis=1).tolist()
            scores = probs.max(axis=1).tolist()
        out = io.StringIO()
        writer = ResultWriter(
            out, fmt=opts.fmt, labels=labels, probabilities=opts.probabilities, header=False
        )
        names = opts.label_format == "name"
        k = 0
        for number, first, lastl, rid, _, reason in rows:
            if reason is None:
                j = best[k]
                row = (rid, labels[j] if names else j, scores[k], probs[k] if opts.probabilities else None)
                k += 1
                if rid is not None:
                    writer.write(*row, None)
                    continue
            else:
                row = (rid, None, None, None)
            if out.tell():
                res.parts.append(out.getvalue())
                out.seek(0)
                out.truncate()
            res.parts.append((number, first, lastl, *row, reason))
        if out.tell():
            res.parts.append(out.getvalue())
        if self.counter is not None and len(rows) > len(good):
            self.counter.add(len(rows) - len(good), (len(rows) - len(good)) * row_bytes)
        return res


def predict_csv(spec: ModelSpec, opts: CsvOptions, progress: Any = None) -> CsvSummary:
    """Classify every row of ``opts.input`` into ``opts.output``; see edgeclf.csvio for the promise.

    ``progress`` (edgeclf.progress.Progress) is told the input size and fed
    rows and bytes done, from every process.
    """
    from . import bundle
    from .chunking import Source, cut_chunks
    from .csvio import AtomicOutput, DuplicateIds, InputFileError, ResultWriter, locate
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
    on_cpu = providers[0] == "CPUExecutionProvider"
    name = "<stdin>" if opts.input == "-" else opts.input
    with Source(opts.input, opts.encoding) as src:
        layout, line_off = src.header(
            summary.stats,
            name=name,
            id_column=opts.id_column or "id",
            text_column=opts.text_column,
            id_required=opts.id_column is not None,
            delimiter=opts.delimiter,
        )
        chunk_bytes = opts.chunk_bytes or (1024 if manifest.padding == "max_length" else 256) * 1024
        chunks = cut_chunks(src.read, chunk_bytes, opts.chunk_rows)
        first = next(chunks, None)
        pending: deque = deque([first] if first is not None else [])
        pool = None
        jobs = opts.jobs or (workers.default_jobs() if on_cpu else 1)  # one GPU session, not one per core
        if not pending or pending[0][1]:
            jobs = 1  # one chunk: no workers to start
        if src.size:  # no more workers than chunks
            jobs = max(1, min(jobs, -(-src.size // chunk_bytes)))
        worker = ChunkWorker(
            spec, layout, opts, None if jobs == 1 else max(1, workers.default_jobs() // jobs)
        )
        if jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            ctx = workers.mp_context()
            if progress is not None:
                worker.counter = progress.start(src.size, ctx)
            pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=workers.init, initargs=(worker,))
        elif progress is not None:
            worker.counter = progress.start(src.size)
        summary.jobs = jobs
        results = _ordered(pending, chunks, worker, pool, 2 * jobs)
        dup = DuplicateIds(summary.stats) if layout.id_idx is not None else None
        row_off = 0
        try:
            with AtomicOutput(opts.output, refuse=[opts.input]) as out:
                writer = ResultWriter(
                    out, fmt=opts.fmt, labels=manifest.labels, probabilities=opts.probabilities
                )
                for res in results:
                    if res.fatal is not None:
                        raise InputFileError(f"{name}: {res.fatal.input_error(line_off, row_off)}")
                    if dup is not None:
                        for rid in res.ids:
                            if rid is not None:
                                dup.add(rid)
                    for part in res.parts:
                        if isinstance(part, str):
                            out.write(part)
                            continue
                        number, first_line, last_line, rid, label, score, probs, reason = part
                        number += row_off
                        error = None
                        if reason is not None:
                            error = locate(number, first_line + line_off, last_line + line_off, reason)
                            summary.errors += 1
                            if opts.errors == "abort":
                                raise InputFileError(f"{name}: {error} (--errors abort: nothing written)")
                        writer.write(str(number) if rid is None else rid, label, score, probs, error)
                    row_off += res.rows
                    line_off += res.lines
                    summary.stats.blank_lines += res.blank
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if progress is not None:
                progress.close()
    summary.rows = summary.stats.rows = row_off
    summary.seconds = time.perf_counter() - started
    return summary


def _ordered(
    pending: deque, chunks: Iterator, worker: ChunkWorker, pool: Any, depth: int
) -> Iterator[ChunkResult]:
    """Results of every chunk in input order; a chunk that ended inside quotes is joined to the next."""
    queue: deque = deque()

    def submit(data: Any, last: bool) -> list:
        return [data, last, pool.submit(workers.run_chunk, data, last) if pool is not None else None]

    def get(data: Any, last: bool, fut: Any) -> ChunkResult:
        return fut.result() if fut is not None else worker(data, last)

    def fill(n: int) -> None:
        while len(queue) < n:
            if pending:
                data, last = pending.popleft()
            else:
                nxt = next(chunks, None)
                if nxt is None:
                    return
                data, last = nxt
            queue.append(submit(data, last))

    fill(depth)
    while queue:
        data, last, fut = queue.popleft()
        res = get(data, last, fut)
        while res.open_end:  # the cut after this chunk was inside a quoted field: parse both as one
            fill(1)
            ndata, nlast, nfut = queue.popleft()
            if nfut is not None:
                nfut.cancel()
            data, last, fut = submit(data + ndata, nlast)
            res = get(data, last, fut)
        yield res
        fill(depth)
