"""Rows/s on Spark local[1] vs local[2] vs the single-process `edgeclf predict`, same CSV.

    python benchmarks/bench_spark.py                    # 25,000 IMDB test reviews, keras-imdb, 3 rounds
    python benchmarks/bench_spark.py --albert-rows 1000 # + albert-imdb on the first 1,000 reviews

Every candidate is a fresh process reading the same CSV (id,text,label,rating)
and writing its predictions (CSV for `edgeclf predict`, Parquet for Spark),
timed in interleaved rounds (CLI, local[1], local[2], CLI, ...) so that drift
on a shared machine hits them alike; medians. A Spark process reports three
times: the whole process (Python + JVM start + the first job), the first job
in its session, and the same job run again in that session (Python workers
already up, bundle already loaded: the steady state of a long-lived cluster).
The per-worker accumulator splits the job into bundle loading and scoring
(tokenizing + onnxruntime); the rest is Spark: CSV parsing, shuffle, Arrow
transfer, Parquet writing. Writes results/spark.json and results/spark.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, markdown_table

RESULTS = ROOT / "benchmarks" / "results"


def spark_child(master: str, model: str, src: str, out: str) -> None:
    """Runs inside a fresh process: start a session, run the command twice, print JSON timings."""
    t0 = time.perf_counter()
    from edgeclf.integrations import spark_cli
    from edgeclf.integrations.spark import worker_stats

    spark = spark_cli.session(master)
    startup = time.perf_counter() - t0
    jobs = []
    for rep in range(2):
        stats = worker_stats(spark)
        args = spark_cli.build_parser().parse_args([src, "-o", f"{out}-{rep}", "--model", model, "-q"])
        t = time.perf_counter()
        spark_cli.run(args, stats=stats)
        took = time.perf_counter() - t
        w = stats.value
        jobs.append(
            {
                "seconds": took,
                "workers": len(w),
                "loads": sum(v.get("loads", 0) for v in w.values()),
                "load_s": sum(v.get("load_s", 0.0) for v in w.values()),
                "score_s": sum(v.get("score_s", 0.0) for v in w.values()),
                "rows": sum(v.get("rows", 0) for v in w.values()),
            }
        )
    print("RESULT " + json.dumps({"startup_s": startup, "jobs": jobs, "spark": spark.version}))
    spark.stop()


def run_spark(master: str, model: str, src: Path, work: Path, tag: str) -> dict:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    cmd = [sys.executable, __file__, "--child", master, model, str(src), str(work / tag)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{master} failed:\n{r.stderr[-3000:]}")
    res = json.loads(next(line[7:] for line in r.stdout.splitlines() if line.startswith("RESULT ")))
    res["process_s"] = wall
    return res


def run_cli(model: str, src: Path, out: Path) -> float:
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "edgeclf", "predict", str(src), "-o", str(out), "--model", model, "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode not in (0, 1):
        raise RuntimeError(r.stderr)
    return time.perf_counter() - t


def write_csv(rows: list[list[str]], header: list[str], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def bench(model: str, src: Path, n: int, rounds: int, work: Path) -> dict:
    samples: dict[str, list] = {"cli": [], "local[1]": [], "local[2]": []}
    for r in range(rounds):
        print(f"  {model} round {r + 1}/{rounds}", file=sys.stderr, flush=True)
        samples["cli"].append(run_cli(model, src, work / f"cli-{model}-{r}.csv"))
        for master in ("local[1]", "local[2]"):
            samples[master].append(run_spark(master, model, src, work, f"{master[6]}-{model}-{r}"))
    med = statistics.median
    out = {"model": model, "rows": n, "rounds": rounds, "cli_s": med(samples["cli"])}
    for master in ("local[1]", "local[2]"):
        s = samples[master]
        out[master] = {
            "process_s": med(x["process_s"] for x in s),
            "startup_s": med(x["startup_s"] for x in s),
            "first_job_s": med(x["jobs"][0]["seconds"] for x in s),
            "warm_job_s": med(x["jobs"][1]["seconds"] for x in s),
            "load_s": med(x["jobs"][0]["load_s"] for x in s),
            "score_s_warm": med(x["jobs"][1]["score_s"] for x in s),
            "workers": s[-1]["jobs"][0]["workers"],
            "loads": s[-1]["jobs"][0]["loads"],
            "spark": s[-1]["spark"],
        }
    return out


def table(results: list[dict]) -> str:
    rows = []
    for res in results:
        n, cli = res["rows"], res["cli_s"]
        rows.append(
            [res["model"], f"{n:,}", "`edgeclf predict` (1 process)", "whole process", cli, n / cli, 1.0]
        )
        for master in ("local[1]", "local[2]"):
            m = res[master]
            for what, key in (
                ("whole process (JVM start + job)", "process_s"),
                ("first job in a started session", "first_job_s"),
                ("same job again (workers warm)", "warm_job_s"),
            ):
                rows.append(
                    [
                        res["model"],
                        f"{n:,}",
                        f"spark-predict {master}",
                        what,
                        m[key],
                        n / m[key],
                        cli / m[key],
                    ]
                )
    return markdown_table(["model", "rows", "candidate", "timed", "seconds", "rows/s", "x CLI speed"], rows)


def where(results: list[dict]) -> str:
    rows = []
    for res in results:
        for master in ("local[1]", "local[2]"):
            m = res[master]
            rows.append(
                [
                    res["model"],
                    master,
                    m["startup_s"],
                    m["workers"],
                    m["loads"],
                    m["load_s"],
                    m["score_s_warm"],
                    m["warm_job_s"],
                ]
            )
    return markdown_table(
        [
            "model",
            "master",
            "session start s",
            "Python workers",
            "bundle loads",
            "load s (all workers)",
            "scoring s (all workers, warm job)",
            "warm job wall s",
        ],
        rows,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=25_000, help="IMDB test reviews for keras-imdb")
    p.add_argument("--albert-rows", type=int, default=0, help="reviews for albert-imdb (0: skip)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "imdb" / "test.csv.gz"))
    p.add_argument("--child", nargs=4, metavar=("MASTER", "MODEL", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        spark_child(*args.child)
        return
    with gzip.open(args.data, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    results = []
    info = machine()
    with tempfile.TemporaryDirectory(prefix="edgeclf-bench-spark-") as tmp:
        work = Path(tmp)
        for model, n in (("keras-imdb", args.rows), ("albert-imdb", args.albert_rows)):
            if n <= 0:
                continue
            src = work / f"imdb-{n}.csv"
            write_csv(rows[:n], header, src)
            results.append(bench(model, src, n, args.rounds, work))
    doc = (
        table(results)
        + "\n\nWhere a job's time goes (medians; scoring = tokenizing + onnxruntime inside the Python workers):\n\n"
        + where(results)
        + f"\n\n_Machine: {info['cpu']}, {info['cores']} cores shared with other work (local[2] uses both), "
        f"{info['platform']}, Python {info['python']}, onnxruntime {info['onnxruntime']}, "
        f"Spark {results[0]['local[2]']['spark']}; load average at start {info['load_average']:.2f}._\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "spark.json").write_text(json.dumps({"machine": info, "results": results}, indent=1) + "\n")
    (RESULTS / "spark.md").write_text(doc, encoding="utf-8")
    print(doc)


if __name__ == "__main__":
    main()
