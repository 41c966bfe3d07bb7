"""Load test of ``edgeclf serve`` on loopback, with and without dynamic batching.

    python benchmarks/bench_serve.py                    # keras-imdb and albert-imdb, 1 / 8 / 64 clients
    python benchmarks/bench_serve.py --models keras-imdb --clients 1,8 --rounds 1

Three real server processes run side by side on 127.0.0.1 (``MODES``: no
batching, batching with the default 0 ms wait, batching with a 2 ms wait;
for ALBERT a fourth, batching without the token limit, ``TOKEN_MODES``);
the load alternates between them in short rounds, so drift on a shared
machine hits all alike. Each client holds one keep-alive connection and
sends one IMDB review per request, waiting for the answer before sending
the next (a closed loop). Every answer is checked against
``Classifier.predict`` of the same text alone, in this process: same label
and a score within the model's tolerance (serve_load.TOLERANCE); a failed
check fails the run. Results: benchmarks/results/serve.json, the table in
docs/serve.md (between its markers) and, through run_all.py, docs/benchmarks.md.

Bounded: a fixed number of requests per measurement and a wall-clock limit
on each; it only ever connects to 127.0.0.1. The client runs on the same
cores as the server: on a 2-core machine it takes part of the CPU the
server could use, so absolute requests/s are a floor.

The load generator itself (server process, client, checks) is serve_load.py,
shared with tests/test_serve.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
from pathlib import Path
from typing import Any

from serve_load import ROOT, LoadResult, ServerProcess, get_json, percentile, reference, run_load

# --------------------------------------------------------------------- the benchmark


#: what is compared, side by side: the server's flags for each
MODES = {
    "no batching": ["--no-batching"],
    "batching, wait 0 ms": ["--batch-wait-ms", "0"],
    "batching, wait 2 ms": ["--batch-wait-ms", "2"],
}
#: ALBERT only (a Keras bundle's runs have a fixed width): the merged batch as one ONNX run
#: (``--batch-tokens none``), beside serve's default of splitting it at the token limit
TOKEN_MODES = {"batching, wait 0 ms, no token limit": ["--batch-wait-ms", "0", "--batch-tokens", "none"]}


def modes_for(model: str) -> dict[str, list[str]]:
    return MODES | (TOKEN_MODES if "albert" in model else {})


def load_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    """``n`` random IMDB test reviews from the shared data, else the reviews edgeclf ships."""
    from edgeclf.export.data import read_csv_rows, shared_data_dir

    data = shared_data_dir()
    if data is not None and (data / "imdb" / "test.csv.gz").exists():
        rows = [r["text"] for r in read_csv_rows(data / "imdb" / "test.csv.gz")]
        random.Random(seed).shuffle(rows)
        return rows[:n], f"{n} random IMDB test reviews (seed {seed})"
    from edgeclf.profile.inputs import SAMPLES_FILE, sample_texts

    texts = sample_texts()
    return texts, f"the {len(texts)} built-in review-style texts (edgeclf/profile/{SAMPLES_FILE})"


def cpu_seconds(pid: int) -> float:
    """CPU seconds the threads of a process have run (Linux schedstat, nanoseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end while we read
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def health_stats(port: int, model: str) -> dict[str, int]:
    return get_json(port, "/health")[1]["models"][model]


def bench(args: argparse.Namespace) -> dict[str, Any]:
    texts, source = load_texts(args.texts)
    clients_list = [int(c) for c in args.clients.split(",")]
    out: dict[str, Any] = {
        "texts": source,
        "rounds": args.rounds,
        "modes": MODES | TOKEN_MODES,
        "results": {},
    }
    for model in args.models.split(","):
        print(f"== {model}: reference predictions", file=sys.stderr, flush=True)
        checker = reference(model, texts)
        base = args.requests.get(model, 200)
        common = ["--model", model, "--max-queue", "1024"]
        with contextlib.ExitStack() as stack:
            procs = {
                mode: stack.enter_context(ServerProcess(*common, *flags))
                for mode, flags in modes_for(model).items()
            }
            servers = {mode: p.port for mode, p in procs.items()}
            for port in servers.values():  # warm up: first runs allocate
                run_load(port, texts, checker, clients=8, requests=32)
            samples: dict[tuple[int, str], list[LoadResult]] = {}
            stats: dict[tuple[int, str], list[int]] = {}
            for rnd in range(args.rounds):
                for clients in clients_list:
                    n = max(base, 2 * clients)
                    for mode, port in servers.items():
                        before = health_stats(port, model)
                        cpu0 = cpu_seconds(procs[mode].proc.pid)
                        res = run_load(
                            port, texts, checker, clients=clients, requests=n, timeout_s=args.timeout
                        )
                        cpu = cpu_seconds(procs[mode].proc.pid) - cpu0
                        after = health_stats(port, model)
                        if res.failures:
                            raise SystemExit(f"{model} {mode} {clients} clients: {res.failures[:5]}")
                        samples.setdefault((clients, mode), []).append(res)
                        runs = stats.setdefault((clients, mode), [0, 0, 0.0])
                        runs[0] += after["runs"] - before["runs"]
                        runs[1] += after["texts"] - before["texts"]
                        runs[2] += cpu
                        print(
                            f"round {rnd + 1} {model} {clients:>2} clients {mode:<20} "
                            f"{res.rps:8.1f} req/s  p50 {percentile(res.latencies_s, 50) * 1e3:7.1f} ms",
                            file=sys.stderr,
                            flush=True,
                        )
        rows = {}
        for (clients, mode), results in samples.items():
            lat = [x for r in results for x in r.latencies_s]
            runs, n_texts, cpu = stats[(clients, mode)]
            rows[f"{clients}_{mode}"] = {
                "clients": clients,
                "mode": mode,
                "requests": sum(r.requests for r in results),
                "rps": statistics.median(r.rps for r in results),  # median over the rounds
                "rps_rounds": [r.rps for r in results],
                "p50_ms": percentile(lat, 50) * 1e3,
                "p99_ms": percentile(lat, 99) * 1e3,
                "texts_per_run": n_texts / max(runs, 1),
                # CPU the server process used (all threads) per request: robust to other tenants
                "server_cpu_ms_per_request": cpu * 1e3 / sum(r.requests for r in results),
            }
        out["results"][model] = {
            "rows": rows,
            "checked": {
                "tolerance": checker.tolerance,
                "answers": checker.answers,
                "max_abs_score_diff": checker.max_abs_diff,
                "labels_differing_near_half": checker.label_differs_near_half,
            },
        }
    return out


def table(result: dict[str, Any]) -> str:
    from common import markdown_table

    lines = []
    for model, res in result["results"].items():
        rows = []
        by_key = res["rows"]
        for r in by_key.values():
            off = by_key[f"{r['clients']}_no batching"]
            rows.append(
                [
                    model,
                    r["clients"],
                    r["mode"],
                    f"{r['rps']:,.0f}",
                    f"{r['p50_ms']:.1f}",
                    f"{r['p99_ms']:.1f}",
                    f"{r['texts_per_run']:.1f}",
                    f"{r['server_cpu_ms_per_request']:.2f}",
                    f"{r['rps'] / off['rps']:.2f}",
                ]
            )
        lines.append(
            markdown_table(
                [
                    "model",
                    "clients",
                    "mode",
                    "requests/s",
                    "p50 ms",
                    "p99 ms",
                    "texts per run",
                    "server CPU ms per request",
                    "requests/s x no batching",
                ],
                rows,
            )
        )
        c = res["checked"]
        lines.append(
            f"\n{c.get('answers', 'Every')} answers checked against `Classifier.predict` of the text alone: "
            f"score within {c['tolerance']:g} (largest difference seen: {c['max_abs_score_diff']:.2g}); "
            f"labels differing where the reference is that close to 0.5: {c['labels_differing_near_half']}.\n"
        )
    return "\n".join(lines)


DOC = ROOT / "docs" / "serve.md"
BEGIN, END = "<!-- bench_serve.py: begin -->", "<!-- bench_serve.py: end -->"


def publish(result: dict[str, Any]) -> None:
    """Put the table, the command and the machine between the markers of docs/serve.md."""
    m = result["machine"]
    block = (
        f"{BEGIN}\n`{result['command']}`, {result['texts']}, {result['rounds']} interleaved rounds "
        "(requests/s: median of the rounds; latencies pooled). "
        f"_Machine: {m['cpu']}, {m['cores']} cores shared with other work (load average "
        f"{m['load_average']:.1f} at the start), {m['platform']}, Python {m['python']}, "
        f"onnxruntime {m['onnxruntime']}; the load generator runs on the same 2 cores._\n\n"
        f"{table(result)}\n{END}"
    )
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + block + text[end:], encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="keras-imdb,albert-imdb")
    p.add_argument("--clients", default="1,8,64")
    p.add_argument("--rounds", type=int, default=8, help="alternating rounds per configuration (default: 8)")
    p.add_argument("--texts", type=int, default=256, help="distinct reviews sent (default: 256)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one measurement may take at most")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve.json"))
    p.add_argument("--render", action="store_true", help="only re-publish --out in docs/serve.md")
    args = p.parse_args()
    #: requests per measurement and round (at least 2 per client): short measurements, many
    #: rounds, so that load from other users of a shared machine falls on every mode alike
    args.requests = {"keras-imdb": 150, "albert-imdb": 48}
    sys.path.insert(0, str(ROOT / "benchmarks"))
    if args.render:
        result = json.loads(Path(args.out).read_text(encoding="utf-8"))
    else:
        from common import machine

        result = bench(args)
        result["machine"] = machine()
        result["command"] = "python " + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(table(result))
    if args.out == p.get_default("out"):  # a partial run elsewhere does not overwrite the published table
        publish(result)


if __name__ == "__main__":
    main()
