"""Load test of ``edgeclf serve`` on loopback, with and without dynamic batching.

    python benchmarks/bench_serve.py                    # keras-imdb and albert-imdb, 1 / 8 / 64 clients
    python benchmarks/bench_serve.py --models keras-imdb --clients 1,8 --rounds 1

Two real server processes run side by side on 127.0.0.1 (one batching with
the default settings, one with ``--no-batching``); the load alternates
between them in rounds, so drift on a shared machine hits both alike.
Each client holds one keep-alive connection and sends one IMDB review per
request, waiting for the answer before sending the next (a closed loop).
Every answer is checked against ``Classifier.predict`` of the same text
alone, in this process: same label and a score within the model's
tolerance (see ``TOLERANCE``); a failed check fails the run.

Bounded: a fixed number of requests per measurement and a wall-clock limit
on each; it only ever connects to 127.0.0.1. The client runs on the same
cores as the server: on a 2-core machine it takes part of the CPU the
server could use, so absolute requests/s are a floor.

The load generator (``ServerProcess``, ``run_load``, ``Checker``) is also what
tests/test_serve.py drives its real server with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

#: How far a served score may be from ``Classifier.predict`` of the same text alone. The Keras
#: int8 model quantizes weights only: batch-mates change nothing (measured: 2e-6). The ALBERT int8
#: variants quantize activations dynamically with one scale per tensor, i.e. per batch, so a
#: text's score moves with the texts it is batched with: up to 0.045 on 256 IMDB reviews in
#: batches of 2 to 64 (`Classifier.predict_proba`, length-sorted) and 0.05 through the server
#: (mixed lengths); the tolerance is twice that. A label may differ only where the reference is
#: that close to 0.5. `edgeclf predict` batches 64 rows and has the same property.
TOLERANCE = {"keras-imdb": 1e-4}
DEFAULT_TOLERANCE = 0.1


# --------------------------------------------------------------------- the server process


class ServerProcess:
    """``python -m edgeclf serve --port 0 ...`` in a real process; ``port`` once it answers /health."""

    def __init__(self, *args: str, ready_timeout: float = 120.0) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="edgeclf-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            # no --host: the default must be loopback (the tests check the address it prints)
            [sys.executable, "-m", "edgeclf", "serve", "--port", "0", *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.port = self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgeclf serve exited {self.proc.returncode}:\n{self.output()}")
            for line in self.output().splitlines():
                if "listening on http://" in line:
                    self.address = line.split("http://", 1)[1].split()[0]
                    port = int(self.address.rsplit(":", 1)[1])
                    if get_json(port, "/health", timeout=5.0)[0] == 200:
                        return port
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"edgeclf serve was not ready within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log.close()
        os.unlink(self.log.name)


# --------------------------------------------------------------------- a minimal HTTP/1.1 client


class Connection:
    """One keep-alive HTTP/1.1 connection (asyncio streams: cheap enough for 64 clients on 2 cores)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        for k, v in {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **(headers or {}),
        }.items():
            head += f"{k}: {v}\r\n"
        self.writer.write(head.encode("latin-1") + b"\r\n" + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection without an answer")
        status = int(status_line.split()[1])
        resp_headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            k, _, v = line.decode("latin-1").partition(":")
            resp_headers[k.strip().lower()] = v.strip()
        data = await self.reader.readexactly(int(resp_headers.get("content-length", "0")))
        if resp_headers.get("connection", "").lower() == "close":
            await self.close()
        return status, resp_headers, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def get_json(port: int, path: str, timeout: float = 30.0) -> tuple[int, Any]:
    """One request on a fresh connection (for /health and /models)."""

    async def go() -> tuple[int, Any]:
        conn = Connection(port)
        try:
            status, _, body = await asyncio.wait_for(conn.request("GET", path), timeout)
        finally:
            await conn.close()
        return status, json.loads(body)

    try:
        return asyncio.run(go())
    except OSError:
        return 0, None


# --------------------------------------------------------------------- checking answers


@dataclass
class Checker:
    """Checks a /predict answer against reference probabilities of each text alone."""

    model: str
    labels: list[str]
    reference: list[list[float]]  # per text, from Classifier.predict_proba([text])
    tolerance: float
    max_abs_diff: float = 0.0
    label_differs_near_half: int = 0  # allowed only where the reference is within tolerance of 0.5

    def check(self, text_ids: list[int], status: int, body: bytes) -> str | None:
        """``None`` when right, else what is wrong."""
        if status != 200:
            return f"status {status}: {body[:200]!r}"
        try:
            answer = json.loads(body)
            preds = answer["predictions"]
        except (ValueError, KeyError, TypeError):
            return f"not a /predict answer: {body[:200]!r}"
        if answer.get("model") != self.model:
            return f"model {answer.get('model')!r}, expected {self.model!r}"
        if len(preds) != len(text_ids):
            return f"{len(preds)} predictions for {len(text_ids)} texts"
        for i, pred in zip(text_ids, preds, strict=True):
            ref = self.reference[i]
            k = max(range(len(ref)), key=ref.__getitem__)
            if pred.get("label") not in self.labels:
                return f"text {i}: label {pred.get('label')!r}"
            j = self.labels.index(pred["label"])
            got, ref_score = pred["score"], ref[j]
            diff = abs(got - ref_score)
            self.max_abs_diff = max(self.max_abs_diff, diff)
            if diff > self.tolerance:
                return f"text {i}: score {got} for {pred['label']}, reference {ref_score} (tolerance {self.tolerance})"
            if j != k:
                if abs(ref[k] - 0.5) > self.tolerance:
                    return f"text {i}: label {pred['label']!r}, reference {self.labels[k]!r} ({ref[k]:.4f})"
                self.label_differs_near_half += 1
        return None


def reference(model: str, texts: list[str]) -> Checker:
    import edgeclf

    clf = edgeclf.load(model)
    probs = [clf.predict_proba([t])[0].tolist() for t in texts]
    return Checker(model, list(clf.labels), probs, TOLERANCE.get(model, DEFAULT_TOLERANCE))


# --------------------------------------------------------------------- the load


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_load(
    port: int,
    texts: list[str],
    checker: Checker,
    *,
    clients: int,
    requests: int,
    texts_per_request: int = 1,
    timeout_s: float = 600.0,
) -> LoadResult:
    """``requests`` POST /predict from ``clients`` closed-loop clients; every answer checked."""
    bodies = []
    for r in range(requests):
        ids = [(r * texts_per_request + j) % len(texts) for j in range(texts_per_request)]
        bodies.append((ids, json.dumps({"texts": [texts[i] for i in ids], "model": checker.model}).encode()))
    result = LoadResult(requests, 0.0)
    next_index = iter(range(requests))

    async def client() -> None:
        conn = Connection(port)
        try:
            for r in next_index:  # shared iterator: each request is sent exactly once
                ids, body = bodies[r]
                t0 = time.perf_counter()
                try:
                    status, _, data = await conn.request("POST", "/predict", body)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    result.failures.append(f"request {r}: {type(exc).__name__}: {exc}")
                    await conn.close()
                    continue
                result.latencies_s.append(time.perf_counter() - t0)
                problem = checker.check(ids, status, data)
                if problem:
                    result.failures.append(f"request {r}: {problem}")
        finally:
            await conn.close()

    async def all_clients() -> None:
        await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), timeout_s)

    t0 = time.perf_counter()
    asyncio.run(all_clients())
    result.seconds = time.perf_counter() - t0
    return result


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


# --------------------------------------------------------------------- the benchmark


#: what is compared, side by side: the server's flags for each
MODES = {
    "no batching": ["--no-batching"],
    "batching, wait 0 ms": ["--batch-wait-ms", "0"],
    "batching, wait 2 ms": ["--batch-wait-ms", "2"],
}


def load_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    """``n`` random IMDB test reviews from the shared data, else the reviews edgeclf ships."""
    from edgeclf.export.data import read_csv_rows, shared_data_dir

    data = shared_data_dir()
    if data is not None and (data / "imdb" / "test.csv.gz").exists():
        rows = [r["text"] for r in read_csv_rows(data / "imdb" / "test.csv.gz")]
        random.Random(seed).shuffle(rows)
        return rows[:n], f"{n} random IMDB test reviews (seed {seed})"
    from importlib.resources import files

    lines = files("edgeclf").joinpath("profile_samples.txt").read_text(encoding="utf-8").splitlines()
    texts = [t for t in lines if t.strip() and not t.startswith("#")]
    return texts, f"the {len(texts)} built-in IMDB reviews (edgeclf/profile_samples.txt)"


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
    out: dict[str, Any] = {"texts": source, "rounds": args.rounds, "modes": MODES, "results": {}}
    for model in args.models.split(","):
        print(f"== {model}: reference predictions", file=sys.stderr, flush=True)
        checker = reference(model, texts)
        base = args.requests.get(model, 200)
        common = ["--model", model, "--max-queue", "1024"]
        with contextlib.ExitStack() as stack:
            procs = {
                mode: stack.enter_context(ServerProcess(*common, *flags)) for mode, flags in MODES.items()
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
            f"\nEvery answer checked against `Classifier.predict` of the text alone: score within "
            f"{c['tolerance']:g} (largest difference seen: {c['max_abs_score_diff']:.2g}); "
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
