"""Score a Spark DataFrame with an edgeclf model (``pip install 'edgeclf[spark]'``).

    from edgeclf.integrations.spark import predict
    scored = predict(spark.read.parquet("posts/"), model="albert-zh-rumor", text_col="text")
    scored.write.parquet("scored/")

Adds ``label`` (string; a multi-label model's labels joined by ``|``),
``score`` (double: the highest probability),
optionally ``probabilities`` (map label -> probability) and ``error``
(string) to every row. A row that cannot be classified (null, empty or
whitespace-only text, a text over ``max_chars``) keeps a null label and score
and gets the reason in ``error``; no row is dropped or reordered within its
partition, and every input column, ids included, passes through untouched.

How it runs (a thin layer over :class:`edgeclf.Classifier`, the same runtime
as ``edgeclf.load``, hence the same labels and scores):

- ``mapInPandas``: each task streams its partition through one Python worker
  as Arrow batches (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows,
  Spark's default 10,000); each batch goes through ``predict_proba`` in ONNX
  batches of ``batch_size``.
- One load per Python worker process: the scoring function is a module-level
  function, pickled by reference, so the cache :data:`_CLASSIFIERS` below is
  the worker's own module global. Spark reuses Python workers between tasks
  (``spark.python.worker.reuse``, on by default), so a worker that runs a
  hundred tasks loads the bundle once. ``stats=worker_stats(spark)`` reports
  loads, tasks, batches, rows and seconds per worker process.
- Shipping the bundle: an embedded model name loads from the edgeclf package
  installed on each executor; a bundle directory is sent with
  ``SparkContext.addFile(dir, recursive=True)`` (or, with ``ship=False``,
  opened at the same path on shared storage). Either way the executor checks
  that its ``manifest.json`` is byte-identical (sha256) to the one the driver
  read, and the classifier verifies every file's sha256 against it before
  onnxruntime parses anything.
- Threads: ``threads=None`` gives each worker's onnxruntime session
  ``spark.task.cpus`` intra-op threads (1 unless the cluster reserves more
  cores per task). An executor with N cores runs N tasks, hence N Python
  workers, at once; onnxruntime's own default (one thread per core) in each
  would start N x N threads on N cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .. import bundle as _bundle
from ..texts import DEFAULT_MAX_CHARS, LONG_TEXTS, classify_texts, text_error

__all__ = ["predict", "text_error", "worker_stats"]

EXTRA_HINT = "pip install 'edgeclf[spark]'"
OUTPUT_COLUMNS = ("label", "score", "probabilities", "error")


def require() -> Any:
    """Import pyspark (and check pandas and pyarrow), or say which extra provides them."""
    import importlib

    for module in ("pandas", "pyarrow", "pyspark"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ModuleNotFoundError(
                f"edgeclf's Spark integration needs {module} ({exc}): {EXTRA_HINT}"
            ) from exc
    import pyspark

    return pyspark


# ----------------------------------------------------------------- executor side


@dataclass(frozen=True)
class _Spec:
    """Everything a Python worker needs, pickled once per task (no Spark objects but ``stats``)."""

    where: str  # "embedded" (installed package), "files" (SparkContext.addFile) or "path" (shared storage)
    source: str  # embedded name, SparkFiles name, or bundle directory
    manifest_sha256: str
    variant: str | None
    threads: int | None
    providers: str
    batch_size: int | None  # None: the classifier's default for the bundle
    max_chars: int
    long_texts: str | None  # None: the bundle's choice
    text_col: str
    keep: tuple[str, ...] | None  # input columns to return (None: all)
    probabilities: bool
    stats: Any = None  # a worker_stats() accumulator, or None


#: (bundle root, manifest sha256, variant, threads, providers, batch size, max chars) -> Classifier
_CLASSIFIERS: dict[tuple, Any] = {}


def _bundle_root(spec: _Spec) -> Path:
    if spec.where == "embedded":
        return _bundle.resolve(spec.source)
    if spec.where == "files":
        from pyspark import SparkFiles

        return Path(SparkFiles.get(spec.source))
    return Path(spec.source)


def _classifier(spec: _Spec) -> Any:
    """This worker's classifier for ``spec``, loaded and verified on first use."""
    from ..classifier import Classifier

    root = _bundle_root(spec)
    key = (str(root), spec.manifest_sha256, spec.variant, spec.threads, spec.providers)
    key += (spec.batch_size, spec.max_chars, spec.long_texts)
    clf = _CLASSIFIERS.get(key)
    if clf is not None:
        return clf
    started = time.perf_counter()
    try:
        raw = (root / _bundle.MANIFEST).read_bytes()
    except OSError as exc:
        raise _bundle.BundleError(f"executor cannot read the bundle at {root}: {exc}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.manifest_sha256:
        raise _bundle.BundleError(
            f"the bundle at {root} on this executor differs from the driver's: manifest.json sha256 "
            f"{digest[:16]}..., driver {spec.manifest_sha256[:16]}... (another edgeclf version or a "
            "changed bundle directory?)"
        )
    manifest = _bundle.parse_manifest(json.loads(raw.decode("utf-8")), root)
    clf = Classifier(  # verifies every file's sha256 against this manifest before use
        _bundle.Bundle(root=root, manifest=manifest),
        variant=spec.variant,
        providers=spec.providers,
        threads=spec.threads,
        batch_size=spec.batch_size,
        max_chars=spec.max_chars,
        long_texts=spec.long_texts,
    )
    _CLASSIFIERS[key] = clf
    if spec.stats is not None:
        spec.stats.add({os.getpid(): {"loads": 1, "load_s": time.perf_counter() - started}})
    return clf


def _score_batches(batches: Any, spec: _Spec) -> Any:
    """mapInPandas body: each pandas batch with label, score, [probabilities,] error added."""
    import numpy as np

    clf = None
    first = 1  # one call of this function is one task (one partition)
    for pdf in batches:
        started = time.perf_counter()
        if clf is None:
            clf = _classifier(spec)
        texts = pdf[spec.text_col].tolist()
        n = len(texts)
        results = classify_texts(clf, texts, max_chars=spec.max_chars)
        errors = [r.error for r in results]
        scores = np.array([np.nan if r.score is None else r.score for r in results], dtype=np.float64)
        out = pdf if spec.keep is None else pdf[list(spec.keep)]
        out = out.assign(label=[r.label for r in results], score=scores)
        if spec.probabilities:
            out = out.assign(probabilities=[r.probabilities for r in results])
        out = out.assign(error=errors)
        if spec.stats is not None:
            took = time.perf_counter() - started
            counts = {
                "tasks": first,
                "batches": 1,
                "rows": n,
                "errors": sum(e is not None for e in errors),
                "score_s": took,
            }
            spec.stats.add({os.getpid(): counts})
            first = 0
        yield out


# ----------------------------------------------------------------- driver side


def _stats_param() -> Any:
    from pyspark.accumulators import AccumulatorParam

    class WorkerStats(AccumulatorParam):
        """{pid: {"loads", "load_s", "tasks", "batches", "rows", "errors", "score_s"}}, summed per worker."""

        def zero(self, value: dict) -> dict:
            return {}

        def addInPlace(self, a: dict, b: dict) -> dict:
            for pid, counts in b.items():
                mine = a.setdefault(pid, {})
                for name, v in counts.items():
                    mine[name] = mine.get(name, 0) + v
            return a

    return WorkerStats()


def worker_stats(spark: Any) -> Any:
    """An accumulator to pass as ``predict(..., stats=)``: ``.value`` maps worker pid -> counts.

    Filled by the Python workers themselves while the job runs: ``loads`` (bundle
    loads, 1 per worker when the cache works), ``load_s``, ``tasks``, ``batches``, ``rows``,
    ``errors``, ``score_s`` (seconds in tokenizing + onnxruntime + building the batch).
    """
    require()
    return spark.sparkContext.accumulator({}, _stats_param())


def _check_args(schema: Any, text_col: str, id_col: str | None, **numbers: int | None) -> None:
    """Refuse bad columns and numbers on the driver, before any task runs."""
    from pyspark.sql import types as T

    names = schema.fieldNames()
    if text_col not in names:
        raise ValueError(f"no {text_col!r} column in the DataFrame (columns: {', '.join(map(repr, names))})")
    if not isinstance(schema[text_col].dataType, T.StringType):
        raise ValueError(f"column {text_col!r} is {schema[text_col].dataType.simpleString()}, not string")
    if id_col is not None and id_col not in names:
        raise ValueError(f"no {id_col!r} column in the DataFrame (columns: {', '.join(map(repr, names))})")
    for name, value in numbers.items():
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1")


def predict(
    df: Any,
    model: str | os.PathLike[str] = "keras-imdb",
    *,
    text_col: str = "text",
    id_col: str | None = None,
    variant: str | None = None,
    probabilities: bool = False,
    batch_size: int | None = None,
    threads: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    long_texts: str | None = None,
    providers: str = "cpu",
    ship: bool = True,
    arrow_batch_rows: int | None = None,
    stats: Any = None,
) -> Any:
    """``df`` with ``label``, ``score``, [``probabilities``,] ``error`` added (lazy, like any transformation).

    ``model``: an embedded name (loaded from the edgeclf installed on the
    executors) or a bundle directory on the driver, shipped with
    ``SparkContext.addFile`` (``ship=False``: a path every executor can read
    as is, e.g. a shared filesystem). ``id_col``: keep only this column and the
    results (the text is not sent back from Python); None keeps every column.
    ``threads``: onnxruntime intra-op threads per Python worker (default
    ``spark.task.cpus``, normally 1). ``batch_size``: texts per ONNX run
    (default: the classifier's for the bundle, 256 for fixed-width bundles, 64
    otherwise). ``arrow_batch_rows``: sets ``spark.sql.execution.arrow.maxRecordsPerBatch`` on the session (it
    applies to every Arrow exchange of the session; None leaves it alone).
    ``long_texts``: ``"truncate"`` or ``"windows"`` (default: the bundle's
    choice), as :func:`edgeclf.load`. ``stats``: a :func:`worker_stats` accumulator.
    """
    require()
    spark = df.sparkSession
    _check_args(df.schema, text_col, id_col, max_chars=max_chars, threads=threads, batch_size=batch_size)
    keep = None
    if id_col is not None:
        df = df.select(*dict.fromkeys([id_col, text_col]))
        keep = (id_col,)
    clash = [c for c in OUTPUT_COLUMNS if c in (keep or df.columns)]
    if clash:
        raise ValueError(
            f"the DataFrame already has a {clash[0]!r} column; rename it first, e.g. "
            f"df.withColumnRenamed({clash[0]!r}, 'true_{clash[0]}')"
        )

    root = _bundle.resolve(model)
    manifest_bytes = (root / _bundle.MANIFEST).read_bytes()
    manifest = _bundle.read_manifest(root)
    manifest.variant(variant)  # an unknown variant fails here, on the driver, not in every task
    if long_texts not in (None, *LONG_TEXTS):
        raise ValueError(f"long_texts must be one of {', '.join(LONG_TEXTS)} (or None), not {long_texts!r}")
    sc = spark.sparkContext
    where, source = _ship(sc, model, root, ship)
    if threads is None:
        threads = int(sc.getConf().get("spark.task.cpus", "1"))
    if arrow_batch_rows is not None:
        if arrow_batch_rows < 1:
            raise ValueError("arrow_batch_rows must be >= 1")
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(arrow_batch_rows))

    spec = _Spec(
        where=where,
        source=source,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        variant=variant,
        threads=threads,
        providers=providers,
        batch_size=batch_size,
        max_chars=max_chars,
        long_texts=long_texts,
        text_col=text_col,
        keep=keep,
        probabilities=probabilities,
        stats=stats,
    )
    return df.mapInPandas(partial(_score_batches, spec=spec), _schema(df, keep, probabilities))


def _ship(sc: Any, model: str | os.PathLike[str], root: Path, ship: bool) -> tuple[str, str]:
    """Where executors find the bundle: the installed package, SparkContext.addFile, or a shared path."""
    if root.parent == _bundle.embedded_root() and os.fspath(model) == root.name:
        return "embedded", root.name
    if ship:
        sc.addFile(str(root.resolve()), recursive=True)
        return "files", root.resolve().name
    return "path", str(root.resolve())


def _schema(df: Any, keep: tuple[str, ...] | None, probabilities: bool) -> Any:
    """The output schema: the kept input columns, label, score, [probabilities,] error."""
    from pyspark.sql import types as T

    kept = [f for f in df.schema.fields if keep is None or f.name in keep]
    fields = [*kept, T.StructField("label", T.StringType()), T.StructField("score", T.DoubleType())]
    if probabilities:
        fields.append(T.StructField("probabilities", T.MapType(T.StringType(), T.DoubleType())))
    fields.append(T.StructField("error", T.StringType()))
    return T.StructType(fields)
