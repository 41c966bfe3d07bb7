"""Query an `edgeclf serve` running in the emulated Raspberry Pi chroot, from the host.

Used by emulated-test.sh. Waits for GET /health, checks GET /models, sends
POST /predict for each served model with texts whose host answers are known
(the host's `edgeclf predict` output for the same wheel) and checks labels and
scores, sends invalid JSON (must be 400, server stays up), then SIGTERMs the
server (the shell checks it exits 0). Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def call(base: str, path: str, body: bytes | None = None, timeout: float = 300) -> tuple[int, dict]:
    req = urllib.request.Request(base + path, data=body, method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main() -> int:
    args = parse_args()
    try:
        return check(args)
    finally:  # whatever happened, ask the server to drain and exit (the shell checks it exits 0)
        with contextlib.suppress(ProcessLookupError):
            os.kill(args.pid, signal.SIGTERM)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--host-out", type=Path, required=True)
    ap.add_argument("--inputs", type=Path, required=True)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument(
        "--int8-tolerance",
        type=float,
        default=1e-4,
        help="for int8 variants (int8-gemm, int8-rowwise in --cases): x86 and ARM kernels differ",
    )
    ap.add_argument("--cases", type=Path, help="emulated-test.sh's 'model variant input kind' lines")
    ap.add_argument("--start-timeout", type=float, default=600)
    return ap.parse_args()


def check(args: argparse.Namespace) -> int:
    base = f"http://127.0.0.1:{args.port}"
    problems: list[str] = []
    kinds = {}
    if args.cases:
        for line in args.cases.read_text().splitlines():
            model, variant, _, kind = line.split()
            kinds[model, variant] = kind

    t0 = time.monotonic()
    while True:
        try:
            status, _ = call(base, "/health", timeout=10)
            if status == 200:
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        try:
            os.kill(args.pid, 0)
        except ProcessLookupError:
            print("serve: the server exited before answering /health")
            return 1
        if time.monotonic() - t0 > args.start_timeout:
            print(f"serve: no /health answer after {args.start_timeout:.0f} s")
            return 1
        time.sleep(1)
    print(
        f"serve: /health ok after {time.monotonic() - t0:.0f} s (emulated start-up, not a performance claim)"
    )

    status, models = call(base, "/models")
    names = {m["name"] for m in (models if isinstance(models, list) else models.get("models", []))}
    if status != 200 or not {"keras-imdb", "albert-zh-rumor"} <= names:
        problems.append(f"GET /models: {status} {models}")

    for model, lang in (("keras-imdb", "en"), ("albert-zh-rumor", "zh")):
        with open(args.inputs / f"{lang}.csv", encoding="utf-8", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["text"].strip()][:24]
        status, out = call(
            base, "/predict", json.dumps({"texts": [r["text"] for r in rows], "model": model}).encode()
        )
        if status != 200:
            problems.append(f"POST /predict {model}: {status} {out}")
            continue
        host_file = args.host_out / f"{model}.{out['variant']}.jsonl"
        host = {}
        with open(host_file, encoding="utf-8") as fh:
            for line in fh:
                h = json.loads(line)
                host[h["id"]] = h
        int8 = kinds.get((model, out["variant"])) in ("int8-gemm", "int8-rowwise")
        tol = args.int8_tolerance if int8 else args.tolerance
        worst, labels_differ = 0.0, 0
        for r, p in zip(rows, out["predictions"], strict=True):
            h = host[r["id"]]
            worst = max(worst, abs(h["score"] - p["score"]))
            labels_differ += h["label"] != p["label"]
            if h["label"] != p["label"] or abs(h["score"] - p["score"]) > tol:
                problems.append(f"{model} id {r['id']}: served {p}, host {h['label']} {h['score']}")
        print(
            f"serve: {model}/{out['variant']}: {len(rows)} texts, {labels_differ} labels differ from the host's, "
            f"max |score diff| {worst:.2e} (tolerance {tol:g})"
        )

    status, out = call(base, "/predict", b"{not json")
    if status != 400:
        problems.append(f"invalid JSON: expected 400, got {status} {out}")
    status, _ = call(base, "/health")
    if status != 200:
        problems.append(f"/health after a bad request: {status}")

    for p in problems:
        print(f"serve: MISMATCH {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
