"""``edgeclf spark-predict INPUT -o OUT.parquet``: score a CSV or Parquet input on Spark.

Reads the input with Spark (a CSV with a header row: RFC 4180 quoting, quoted
newlines; or Parquet), scores it with :func:`edgeclf.integrations.spark.predict`
and writes a Parquet dataset (a directory of part files, committed by Spark
only when the job succeeds) with the columns ``id, label, score, error``
(``probabilities`` with ``--probabilities``). Without an id column the rows
are numbered from 1 in the order Spark reads them, as ``edgeclf predict`` does.

Runs on whatever master ``spark-submit`` gives it, else ``--master`` (default
``local[*]``). Exit codes as ``edgeclf predict``: 0 every row classified, 1
written with some error rows, 2 usage or input error (nothing written).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..texts import DEFAULT_MAX_CHARS, LONG_TEXTS
from .spark import predict, require

EXIT_OK, EXIT_ROW_ERRORS, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgeclf spark-predict",
        description="Score a CSV or Parquet input on Spark; write Parquet with id, label, score, error.",
    )
    p.add_argument("input", help="a CSV file (with a header) or Parquet file/directory; any path Spark reads")
    p.add_argument("-o", "--output", required=True, help="output Parquet directory (must not exist)")
    p.add_argument(
        "--format", choices=("csv", "parquet"), default=None, help="input format (default: by suffix)"
    )
    p.add_argument("-m", "--model", default="keras-imdb", help="embedded model name or bundle directory")
    p.add_argument("--variant", default=None, help="fp32, int8, ... (default: the bundle's default)")
    p.add_argument("--id-column", default=None, help="id column (default: 'id' if present, else row numbers)")
    p.add_argument("--text-column", default="text", help="text column (default: text)")
    p.add_argument("--delimiter", default=",", help="CSV field delimiter (default: ,)")
    p.add_argument("--encoding", default="utf-8", help="CSV encoding (default: utf-8)")
    p.add_argument("--probabilities", action="store_true", help="add a probabilities map column")
    p.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS, help="longer texts become error rows")
    p.add_argument(
        "--long-texts",
        choices=LONG_TEXTS,
        default=None,
        help="texts longer than the model reads: truncate or windows (default: the bundle's choice)",
    )
    p.add_argument("--master", default=None, help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="onnxruntime threads per Python worker (default: spark.task.cpus)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="texts per ONNX run (default: 256 fixed-width, 64 otherwise)",
    )
    p.add_argument(
        "--arrow-batch-rows",
        type=int,
        default=None,
        help="rows per Arrow batch sent to a Python worker (Spark's default: 10000)",
    )
    p.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="repartition the input into this many partitions (default: only when it has fewer than the cores)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    return p


def session(master: str | None) -> Any:
    """The active SparkSession, or a new one (local mode: this Python for the workers, no UI, loopback only)."""
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    conf = SparkConf()
    builder = SparkSession.builder.appName("edgeclf spark-predict")
    if master or not conf.contains("spark.master"):
        builder = builder.master(master or "local[*]")
    if (master or conf.get("spark.master", "local[*]")).startswith("local"):
        if not (os.environ.get("PYSPARK_PYTHON") or conf.contains("spark.pyspark.python")):
            os.environ["PYSPARK_PYTHON"] = sys.executable  # workers need this venv's edgeclf and pyarrow
        if not conf.contains("spark.ui.enabled"):
            builder = builder.config("spark.ui.enabled", "false")  # no web server for a local batch job
        for key in ("spark.driver.bindAddress", "spark.driver.host"):  # listen on loopback only
            if not conf.contains(key):
                builder = builder.config(key, "127.0.0.1")
        if not sys.stderr.isatty():
            builder = builder.config("spark.ui.showConsoleProgress", "false")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_input(spark: Any, args: argparse.Namespace) -> Any:
    fmt = args.format or ("parquet" if args.input.rstrip("/").endswith((".parquet", ".pq")) else "csv")
    if fmt == "parquet":
        return spark.read.parquet(args.input)
    return (
        spark.read.option("header", True)
        .option("multiLine", True)  # quoted newlines, as `edgeclf predict` reads them
        .option("escape", '"')  # RFC 4180: "" inside a quoted field
        .option("sep", args.delimiter)
        .option("encoding", args.encoding)
        .option("mode", "PERMISSIVE")  # a short row gets nulls (an error row), never aborts the job
        .csv(args.input)
    )


def with_row_numbers(df: Any, name: str) -> Any:
    """``df`` with a 1-based row number column in read order, computed in the JVM (no collect of rows).

    monotonically_increasing_id() is (partition << 33) + position; one pass counts
    each partition's rows, and their running sums turn positions into row numbers.
    """
    from pyspark.sql import functions as F

    part, mid = F.spark_partition_id(), F.monotonically_increasing_id()
    df = df.withColumn("__edgeclf_part", part).withColumn(
        "__edgeclf_pos", mid - F.shiftleft(part.cast("long"), 33)
    )
    counts = dict(df.groupBy("__edgeclf_part").count().collect())
    offsets, total = {}, 0
    for p in sorted(counts):
        offsets[p] = total
        total += counts[p]
    offset = F.lit(0)
    for p, off in offsets.items():
        offset = F.when(F.col("__edgeclf_part") == p, F.lit(off)).otherwise(offset)
    numbered = df.withColumn(name, (offset + F.col("__edgeclf_pos") + 1).cast("long"))
    return numbered.drop("__edgeclf_part", "__edgeclf_pos")


def run(args: argparse.Namespace, stats: Any = None) -> int:
    """The command; ``stats``: a :func:`~edgeclf.integrations.spark.worker_stats` accumulator (benchmarks)."""
    for flag in ("max_chars", "threads", "batch_size", "arrow_batch_rows", "partitions"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1")
    out = args.output  # a string: Path() would fold hdfs:///x or s3a://b/x into another URI
    local = Path(out)  # checked here when it is a local path; Spark refuses an existing one anywhere
    if local.exists() and not args.overwrite:
        raise ValueError(f"{out} exists; choose another output or pass --overwrite")
    if Path(args.input).exists() and local.exists() and os.path.samefile(args.input, local):
        raise ValueError(f"refusing to overwrite the input {args.input} with the output")
    started = time.perf_counter()
    spark = session(args.master)
    df = read_input(spark, args)
    if args.text_column not in df.columns:
        raise ValueError(
            f"{args.input}: no {args.text_column!r} column (columns: {', '.join(map(repr, df.columns))}); "
            "choose one with --text-column"
        )
    id_col = args.id_column or "id"
    if id_col not in df.columns:
        if args.id_column is not None:
            raise ValueError(
                f"{args.input}: no {id_col!r} column (columns: {', '.join(map(repr, df.columns))})"
            )
        df = with_row_numbers(df, id_col)
    cores = spark.sparkContext.defaultParallelism
    wanted = args.partitions or (cores if df.rdd.getNumPartitions() < cores else None)
    if wanted and wanted != df.rdd.getNumPartitions():
        df = df.repartition(wanted)
    scored = predict(
        df,
        args.model,
        text_col=args.text_column,
        id_col=id_col,
        variant=args.variant,
        probabilities=args.probabilities,
        batch_size=args.batch_size,
        threads=args.threads,
        max_chars=args.max_chars,
        long_texts=args.long_texts,
        arrow_batch_rows=args.arrow_batch_rows,
        stats=stats,
    )
    scored.write.mode("overwrite" if args.overwrite else "errorifexists").parquet(out)
    result = spark.read.parquet(out).selectExpr("count(*) AS rows", "count(error) AS errors").first()
    if not args.quiet:
        took = time.perf_counter() - started
        rate = result.rows / max(took, 1e-9)
        print(
            f"edgeclf: {result.rows:,} rows -> {out}: {result.rows - result.errors:,} classified, "
            f"{result.errors:,} errors; model {args.model}; {took:.2f} s ({rate:,.{0 if rate >= 100 else 1}f} rows/s, "
            f"Spark {spark.version}, master {spark.sparkContext.master})",
            file=sys.stderr,
        )
    return EXIT_ROW_ERRORS if result.errors else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    require()
    from pyspark.errors import PySparkException

    from ..bundle import BundleError

    try:
        return run(args)
    except (BundleError, ValueError) as exc:
        print(f"edgeclf spark-predict: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PySparkException as exc:  # no such input, or a worker refused the bundle (BundleError ...)
        lines = [line for line in str(exc).splitlines() if line.strip()] or ["?"]
        cause = [line for line in lines if re.match(r"[\w.]*(Error|Exception): ", line)]
        print(f"edgeclf spark-predict: error: {(cause or lines)[-1].strip()}", file=sys.stderr)
        return EXIT_USAGE
