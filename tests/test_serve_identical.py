"""``edgeclf serve`` answers the same bytes for the same request, whatever is batched with it.

The threat: dynamic batching merges concurrent requests into one ONNX run, so
with an activation scale chosen per batch a rumor post's score (and, near
0.5, its verdict) would depend on who else was asking. 16 concurrent clients
send two different requests (the same 4 reviews; 4 other texts of other
lengths) to a real server; every answer to a request must be byte-identical
to every other answer to it and to the answer it gets alone. The same load on
a copy of the bundle whose default is the dynamic per-tensor variant shows
the effect the test catches. Real server process, real HTTP, loopback only.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from edgeclf.bundle import embedded_root

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_load import Connection, ServerProcess  # noqa: E402

from .test_serve import TEXTS  # noqa: E402

REQUEST_A = json.dumps({"texts": TEXTS[:4]}).encode()
REQUEST_B = json.dumps({"texts": [TEXTS[4] * 3, "Fine.", TEXTS[5] + " " + TEXTS[3], TEXTS[2] * 5]}).encode()


@pytest.fixture(scope="module")
def extra() -> None:
    for module in ("starlette", "uvicorn"):
        pytest.importorskip(module, reason="needs the serve extra: pip install 'edgeclf[serve]'")


def answers_under_load(port: int, clients: int = 16, rounds: int = 2) -> dict[bytes, list[bytes]]:
    """Bodies answered to each request: first each alone, then from ``clients`` concurrent clients."""

    async def send(conn: Connection, body: bytes) -> bytes:
        status, _, data = await conn.request("POST", "/predict", body)
        assert status == 200, data[:200]
        return data

    async def run() -> dict[bytes, list[bytes]]:
        out: dict[bytes, list[bytes]] = {REQUEST_A: [], REQUEST_B: []}
        alone = Connection(port)
        for body in out:
            out[body].append(await send(alone, body))
        await alone.close()

        async def client(i: int) -> None:
            conn = Connection(port)
            body = REQUEST_A if i % 2 else REQUEST_B
            for _ in range(rounds):
                out[body].append(await send(conn, body))
            await conn.close()

        await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(clients))), 600)
        return out

    return asyncio.run(run())


def test_identical_requests_get_identical_bytes_under_concurrent_load(extra):
    with ServerProcess("--model", "albert-imdb") as server:
        answers = answers_under_load(server.port)
    for got in answers.values():
        assert len(got) == 1 + 8 * 2
        assert len(set(got)) == 1, f"{len(set(got))} different answers to one request: {sorted(set(got))[:2]}"


def test_the_dynamic_variant_answers_differ_under_the_same_load(extra, tmp_path):
    src = embedded_root() / "albert-imdb"
    manifest = json.loads((src / "manifest.json").read_text())
    if "int8-dynamic" not in manifest["variants"]:
        pytest.skip("albert-imdb has no int8-dynamic variant")
    bundle = tmp_path / "albert-imdb-dynamic"
    shutil.copytree(src, bundle)
    manifest["default_variant"] = manifest["provider_variants"]["cpu"] = "int8-dynamic"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with ServerProcess("--model", str(bundle)) as server:
        answers = answers_under_load(server.port)
    assert max(len(set(got)) for got in answers.values()) > 1
