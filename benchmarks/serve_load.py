"""The load generator for ``edgeclf serve``: a real server process, a small HTTP/1.1 client,
an answer checker and a closed-loop load, all on 127.0.0.1.

Used by benchmarks/bench_serve.py (the published table) and tests/test_serve.py, so the test
and the table drive the server with the same client and the same checks. Bounded: every load
is a fixed number of requests under a wall-clock limit, and it only connects to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
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
#: int8 model quantizes weights only: batch-mates change nothing. The ALBERT int8 variants
#: quantize activations dynamically with one scale per tensor, i.e. per batch, so a text's score
#: moves a little with the texts it is batched with (bench_serve.py reports the largest
#: difference it saw: 0.04 to 0.052 in its runs); the tolerance is about twice that, and a label may
#: differ only where the reference is that close to 0.5. `edgeclf predict` batches 64 rows and
#: has the same property.
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
    answers: int = 0  # predictions checked
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
            self.answers += 1
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
