"""`edgeclf predict FILE.csv` as users run it, against a stdlib floor, whole processes side by side.

For each model, on real data: the floor (benchmarks/floor_predict.py: read
the CSV, lowercase and split each text, write id,label,score,error), edgeclf
with ``--jobs 1`` (one process) and with the default ``--jobs`` (the usable
cores), and optionally the runtime of an older commit (``--before COMMIT``,
run from a ``git archive`` of its ``runtime/``). Rounds are interleaved
(floor, jobs 1, default, before, floor, ...), so drift on a shared machine
hits all alike; we report medians and ratios to the floor of the same run.
Peak memory is the largest sum of RSS over the process and its workers.

    python benchmarks/bench_predict.py [--rounds 5] [--before c1b0792]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, markdown_table

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"

#: model, data file, rows (None: all)
MODELS = [
    ("keras-imdb", DATA / "imdb" / "test.csv.gz", None),
    ("albert-imdb", DATA / "imdb" / "test.csv.gz", 2000),
    ("albert-zh-rumor", DATA / "zh-rumor" / "ced.csv", None),
]


def write_input(src: Path, rows: int | None, dst: Path) -> int:
    """The first ``rows`` rows of a (gzip'ed) CSV, as ``id,text`` (+ the other columns)."""
    opener = gzip.open if src.suffix == ".gz" else open
    n = 0
    with (
        opener(src, "rt", encoding="utf-8", newline="") as fin,
        open(dst, "w", encoding="utf-8", newline="") as fout,
    ):
        reader = csv.reader(fin)
        writer = csv.writer(fout, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            if rows is not None and n >= rows:
                break
            writer.writerow(row)
            n += 1
    return n


def _tree_rss_kb(pid: int) -> int:
    """RSS of a process and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            pass
    return total


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, workers included) and peak tree RSS (MiB)."""
    import threading

    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], _tree_rss_kb(p.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = p.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(p.pid, 0)  # Linux: the child's usage includes the workers it reaped
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, peak[0] / 1024


def old_runtime(commit: str, where: Path) -> Path:
    """``edgeclf`` as it was at ``commit``, importable from ``where`` (PYTHONPATH)."""
    archive = subprocess.run(["git", "archive", commit, "runtime"], cwd=ROOT, check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(where, filter="data")
    (where / "runtime").rename(where / "edgeclf")
    return where


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--slow-rounds", type=int, default=3, help="rounds for the ALBERT models (minutes each)")
    p.add_argument("--before", default=None, help="also time the runtime of this commit")
    p.add_argument("--models", default=",".join(m for m, _, _ in MODELS))
    args = p.parse_args()
    wanted = args.models.split(",")
    env = {**os.environ}
    results: dict = {"machine": machine(), "rounds": args.rounds, "models": {}}
    jobs = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        before_env = None
        if args.before:
            old = old_runtime(args.before, tmpdir / "old")
            before_env = {**env, "PYTHONPATH": str(old)}
            results["before"] = args.before
        for model, src, rows in MODELS:
            if model not in wanted:
                continue
            data = tmpdir / f"{model}.csv"
            n = write_input(src, rows, data)
            out = tmpdir / "out.csv"
            edgeclf = [
                sys.executable,
                "-m",
                "edgeclf",
                "predict",
                str(data),
                "-o",
                str(out),
                "-q",
                "-m",
                model,
            ]
            candidates = {
                "floor (stdlib script)": (
                    [sys.executable, str(ROOT / "benchmarks" / "floor_predict.py"), str(data), str(out)],
                    env,
                ),
                "edgeclf --jobs 1": ([*edgeclf, "--jobs", "1"], env),
                f"edgeclf (default: --jobs {jobs})": (edgeclf, env),
            }
            if before_env is not None:
                candidates[f"edgeclf before ({args.before})"] = (edgeclf, before_env)
            for cmd, e in list(candidates.values())[:2]:  # warm the page cache and the bundle files
                run(cmd, e)
            rounds = args.rounds if model == "keras-imdb" else args.slow_rounds
            samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in candidates}
            for r in range(rounds):
                for name, (cmd, e) in candidates.items():
                    samples[name].append(run(cmd, e))
                print(f"{model}: round {r + 1}/{rounds}", file=sys.stderr, flush=True)
            floor = statistics.median(w for w, _, _ in samples["floor (stdlib script)"])
            floor_cpu = statistics.median(c for _, c, _ in samples["floor (stdlib script)"])
            table = {}
            for name, s in samples.items():
                wall = statistics.median(w for w, _, _ in s)
                cpu = statistics.median(c for _, c, _ in s)
                table[name] = {
                    "median_s": round(wall, 3),
                    "rows_per_s": round(n / wall),
                    "x_floor": round(wall / floor, 2),
                    "cpu_s": round(cpu, 3),
                    "cpu_x_floor": round(cpu / floor_cpu, 2),
                    "peak_mib": round(max(m for _, _, m in s)),
                }
            results["models"][model] = {
                "rows": n,
                "data": src.name,
                "rounds": rounds,
                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "load_average": round(os.getloadavg()[0], 1),
                "results": table,
            }
            print(render_model(model, results["models"][model]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "predict.json"
    if path.exists() and set(wanted) != {m for m, _, _ in MODELS}:  # a partial run keeps the other models
        old = json.loads(path.read_text())
        results["models"] = {**old.get("models", {}), **results["models"]}
        results["runs"] = [*old.get("runs", [old["machine"]]), results["machine"]]
    path.write_text(json.dumps(results, indent=1))


def render_model(model: str, r: dict) -> str:
    rows = [
        [
            name,
            v["median_s"],
            v["rows_per_s"],
            v["x_floor"],
            v.get("cpu_s", ""),
            v.get("cpu_x_floor", ""),
            v["peak_mib"],
        ]
        for name, v in r["results"].items()
    ]
    headers = [
        "command",
        "wall s",
        "rows/s",
        "wall x floor",
        "CPU s",
        "CPU x floor",
        "peak MiB (all processes)",
    ]
    when = f" ({r['when']}, load average {r['load_average']} at the end)" if "when" in r else ""
    title = f"**{model}**, {r['rows']:,} rows of {r['data']}, medians of {r.get('rounds', '?')} rounds{when}:"
    return title + "\n\n" + markdown_table(headers, rows)


if __name__ == "__main__":
    main()
