"""``edgeclf serve``: a real server process on 127.0.0.1, real HTTP, real models.

The load generator and answer checker are benchmarks/serve_load.py, the ones
behind the published table (benchmarks/bench_serve.py). Only loopback is ever
contacted; every load is a fixed number of requests under a time limit.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgeclf.bundle import open_bundle
from edgeclf.classifier import DEFAULT_BATCH_TOKENS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_load import Checker, ServerProcess, get_json, reference, run_load  # noqa: E402

LIMITS = ["--max-body-bytes", "65536", "--max-texts", "16", "--max-chars", "20000"]
TEXTS = [
    "A moving, beautifully acted film with a script that never talks down to its audience.",
    "Dull, far too long, and the plot makes no sense at all. I wanted my two hours back.",
    "An okay movie.",
    "The best thing I have seen this year: funny, sad and true.",
    "Terrible acting; the dialogue is wooden and the ending is a joke.",
    "I laughed, I cried, I bought the soundtrack.",
] * 4


@pytest.fixture(scope="module")
def extra() -> None:
    for module in ("starlette", "uvicorn"):
        pytest.importorskip(module, reason="needs the serve extra: pip install 'edgeclf[serve]'")


@pytest.fixture(scope="module")
def server(extra):
    with ServerProcess("--model", "keras-imdb", "--model", "albert-imdb", *LIMITS) as s:
        yield s


@pytest.fixture(scope="module")
def checkers() -> dict[str, Checker]:
    return {m: reference(m, TEXTS) for m in ("keras-imdb", "albert-imdb")}


def call(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict[str, str], dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(data) if data else {}
    finally:
        conn.close()


def predict(port: int, payload: object) -> tuple[int, dict[str, str], dict]:
    return call(port, "POST", "/predict", json.dumps(payload).encode())


def wait_for(port: int, model: str, condition, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = get_json(port, "/health")[1]["models"][model]
        if condition(stats):
            return stats
        time.sleep(0.005)
    raise AssertionError(f"/health never showed the expected state: {stats}")


def cpu_variant(model: str) -> str:
    """The variant a bundle runs on this CPU machine (its manifest's choice)."""
    return open_bundle(model).manifest.provider_variants["cpu"]


# --------------------------------------------------------------------- happy path


def test_binds_loopback_by_default_and_answers_in_input_order(server, checkers):
    assert server.address.startswith("127.0.0.1:")
    for model, checker in checkers.items():
        status, _, body = predict(server.port, {"texts": TEXTS[:6], "model": model, "probabilities": True})
        assert status == 200
        assert body["model"] == model and body["variant"] == cpu_variant(model)
        assert checker.check(list(range(6)), 200, json.dumps(body).encode()) is None
        for p in body["predictions"]:
            assert set(p["probabilities"]) == {"negative", "positive"}
            assert p["probabilities"][p["label"]] == p["score"]
    status, _, body = predict(server.port, {"texts": TEXTS[:2]})  # no model: the first one served
    assert status == 200 and body["model"] == "keras-imdb"
    assert "probabilities" not in body["predictions"][0]
    bom = b"\xef\xbb\xbf" + json.dumps({"texts": TEXTS[:1]}).encode()  # a BOM is tolerated (RFC 8259)
    assert call(server.port, "POST", "/predict", bom)[0] == 200


def test_empty_texts_are_reported_in_place_like_predict_rows(server, checkers):
    texts = [TEXTS[0], "", "  \t\n", TEXTS[1]]
    status, _, body = predict(server.port, {"texts": texts})
    assert status == 200
    preds = body["predictions"]
    assert [p["label"] for p in preds[1:3]] == [None, None]
    assert (
        preds[1]["error"] == "text 1 (0-based index): empty text"
        and preds[2]["error"] == "text 2 (0-based index): empty text"
    )
    ref = checkers["keras-imdb"]
    assert (
        ref.check([0], 200, json.dumps({"model": "keras-imdb", "predictions": [preds[0]]}).encode()) is None
    )
    assert (
        ref.check([1], 200, json.dumps({"model": "keras-imdb", "predictions": [preds[3]]}).encode()) is None
    )
    status, _, body = predict(server.port, {"texts": ["fine", "\udc80 a lone surrogate escape"]})
    assert status == 200 and body["predictions"][0]["label"] is not None
    assert body["predictions"][1] == {
        "label": None,
        "score": None,
        "error": "text 1 (0-based index): invalid bytes for the input encoding",
    }
    status, _, body = predict(server.port, {"texts": []})
    assert status == 200 and body["predictions"] == []


def test_models_and_health(server):
    status, _, body = call(server.port, "GET", "/models")
    assert status == 200 and body["default"] == "keras-imdb"
    cli = json.loads(
        subprocess.run(
            [sys.executable, "-m", "edgeclf", "models", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    by_name = {m["name"]: m for m in cli}
    for m in body["models"]:
        loaded = m.pop("loaded")
        assert m == by_name[m["name"]]  # what `edgeclf models --json` shows ...
        assert (
            loaded["variant"] == cpu_variant(m["name"]) and "CPUExecutionProvider" in loaded["providers"]
        )  # ... + what runs
        assert loaded["batching"]["enabled"] is True
        # ALBERT on the CPU provider: merged batches split at the classifier's token limit, as
        # `edgeclf predict` does; a Keras bundle's fixed-width runs ignore it
        if m["name"] == "albert-imdb":
            assert loaded["batching"]["batch_tokens"] == DEFAULT_BATCH_TOKENS
    status, _, body = call(server.port, "GET", "/health")
    assert status == 200 and body["status"] == "ok" and set(body["models"]) == {"keras-imdb", "albert-imdb"}


# --------------------------------------------------------------------- bad input


def _chunked(parts):
    yield from parts


BAD = [
    ("not JSON", b'{"texts": [', 400, "invalid JSON"),
    ("not UTF-8", b'{"texts": ["\xff\xfe"]}', 400, "not UTF-8"),
    ("UTF-16", '{"texts": ["ok"]}'.encode("utf-16"), 400, "not UTF-8"),
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, 413, "--max-body-bytes"),
    ("nested 20,000 deep", b"[" * 20_000 + b"]" * 20_000, 400, "invalid JSON"),
    ("a 5,000-digit number", b'{"texts": [' + b"9" * 5000 + b"]}", 400, "invalid JSON"),
    ("array body", b'["a"]', 422, "JSON object"),
    ("no texts", b'{"text": ["a"]}', 422, "unknown field 'text'"),
    ("texts missing", b"{}", 422, "'texts' is required"),
    ("texts a string", b'{"texts": "a good film"}', 422, "'texts' must be a list of strings, got string"),
    ("a number among texts", b'{"texts": ["ok", 3]}', 422, "text 1 (0-based index): expected a string, got int"),
    ("null among texts", b'{"texts": ["ok", null]}', 422, "text 1 (0-based index): no text"),
    ("model a number", b'{"texts": ["ok"], "model": 3}', 422, "'model' must be a string"),
    ("probabilities a string", b'{"texts": ["ok"], "probabilities": "yes"}', 422, "true or false"),
    ("unknown model", b'{"texts": ["ok"], "model": "gpt-5"}', 404, "unknown model 'gpt-5'"),
    ("too many texts", json.dumps({"texts": ["ok"] * 17}).encode(), 413, "limit of 16 (--max-texts)"),
    ("a text too long", json.dumps({"texts": ["ok", "x" * 20001]}).encode(), 413, "text 1 (0-based index): text has 20,001 characters, over --max-chars 20,000"),
    ("body over the limit", json.dumps({"texts": ["y" * 70000]}).encode(), 413, "limit of 65,536 bytes (--max-body-bytes)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "status", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_request_gets_its_status_and_a_json_error_and_the_server_stays_up(
    server, name, body, status, message
):
    got, headers, answer = call(server.port, "POST", "/predict", body, {"Content-Type": "application/json"})
    assert (got, headers["content-type"]) == (status, "application/json")
    assert message in answer["error"], answer
    assert predict(server.port, {"texts": ["still up?"]})[0] == 200


def test_chunked_body_over_the_limit_is_cut_off_at_the_limit(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:  # no Content-Length: the limit must be enforced while the body streams in
        conn.request(
            "POST",
            "/predict",
            body=_chunked([b'{"texts": ["', b"z" * 40000, b"z" * 40000, b'"]}']),
            encode_chunked=True,
        )
        r = conn.getresponse()
        assert r.status == 413 and "--max-body-bytes" in json.loads(r.read())["error"]
    finally:
        conn.close()
    assert predict(server.port, {"texts": ["still up?"]})[0] == 200


def test_unknown_path_and_method_are_json_errors(server):
    status, _, body = call(server.port, "GET", "/nope")
    assert status == 404 and "/predict" in body["error"]
    status, headers, body = call(server.port, "GET", "/predict")
    assert status == 405 and headers["allow"] == "POST" and body["error"]


# --------------------------------------------------------------------- concurrency and load


def test_concurrent_requests_on_two_models_match_classifier_text_for_text(server, checkers):
    """64 clients at once on each model; batches mix requests, answers must not mix."""
    before = {m: get_json(server.port, "/health")[1]["models"][m] for m in checkers}
    results = {}

    def go(model: str, requests: int) -> None:
        results[model] = run_load(
            server.port,
            TEXTS,
            checkers[model],
            clients=64,
            requests=requests,
            texts_per_request=3,
            timeout_s=300,
        )

    threads = [threading.Thread(target=go, args=a) for a in (("keras-imdb", 640), ("albert-imdb", 128))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(360)
    for model, res in results.items():
        assert res.failures == [], res.failures[:5]
        assert len(res.latencies_s) == res.requests
        after = get_json(server.port, "/health")[1]["models"][model]
        runs = after["runs"] - before[model]["runs"]
        assert after["requests"] - before[model]["requests"] == res.requests
        assert runs < res.requests, (
            f"{model}: {res.requests} concurrent requests ran in {runs} runs: no batching"
        )
    assert len(results) == 2


def test_batching_can_be_off_for_one_model_only(extra, checkers):
    with ServerProcess("-m", "keras-imdb", "-m", "albert-imdb", "--no-batching", "albert-imdb", *LIMITS) as s:
        loaded = {
            m["name"]: m["loaded"]["batching"]["enabled"] for m in get_json(s.port, "/models")[1]["models"]
        }
        assert loaded == {"keras-imdb": True, "albert-imdb": False}
        for model, n in (("keras-imdb", 320), ("albert-imdb", 64)):
            res = run_load(s.port, TEXTS, checkers[model], clients=32, requests=n, timeout_s=300)
            assert res.failures == []
            stats = get_json(s.port, "/health")[1]["models"][model]
            assert stats["requests"] == n
            assert (stats["runs"] < n) if model == "keras-imdb" else (stats["runs"] == n)


def test_the_token_limit_can_be_set_or_lifted_and_answers_stay_right(extra, checkers):
    for flag, expected in (("none", None), ("512", 512)):
        with ServerProcess("-m", "albert-imdb", "--batch-tokens", flag, *LIMITS) as s:
            (m,) = get_json(s.port, "/models")[1]["models"]
            assert m["loaded"]["batching"]["batch_tokens"] == expected
            res = run_load(s.port, TEXTS, checkers["albert-imdb"], clients=16, requests=48, timeout_s=300)
            assert res.failures == []
    for bad in ("0", "many"):
        r = subprocess.run(
            [sys.executable, "-m", "edgeclf", "serve", "--batch-tokens", bad],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and "--batch-tokens" in r.stderr


def test_bounded_load_every_answer_checked(server, checkers):
    res = run_load(server.port, TEXTS, checkers["keras-imdb"], clients=16, requests=1000, timeout_s=300)
    assert res.failures == [] and len(res.latencies_s) == 1000
    assert get_json(server.port, "/health")[0] == 200


def test_full_queue_answers_503_with_retry_after(extra):
    args = (
        "--model",
        "albert-imdb",
        "--no-batching",
        "--max-queue",
        "1",
        *LIMITS,
        "--max-texts",
        "64",
        "--max-body-bytes",
        "1048576",
    )
    with ServerProcess(*args) as s:
        big = ([t * 20 for t in TEXTS] * 3)[:64]  # 64 long reviews: a second or more of work per request
        slow = reference("albert-imdb", big)
        results = []

        def send() -> None:
            results.append(run_load(s.port, big, slow, clients=1, requests=1, texts_per_request=64))

        first = threading.Thread(target=send)
        first.start()
        wait_for(s.port, "albert-imdb", lambda st: st["running"] > 0)
        second = threading.Thread(target=send)
        second.start()
        wait_for(s.port, "albert-imdb", lambda st: st["queued"] == 1)
        status, headers, body = predict(s.port, {"texts": ["one more"]})
        assert status == 503
        assert headers["retry-after"] == "1" and "--max-queue 1" in body["error"]
        first.join(300)
        second.join(300)
        assert [r.failures for r in results] == [[], []]  # the queued ones are answered, and right
        assert get_json(s.port, "/health")[1]["models"]["albert-imdb"]["rejected"] == 1
        assert predict(s.port, {"texts": ["and now?"]})[0] == 200


# --------------------------------------------------------------------- lifecycle


def test_sigterm_drains_in_flight_requests_and_exits_0(extra):
    s = ServerProcess("--model", "albert-imdb", "--no-batching", *LIMITS)
    try:
        long_texts = [t * 6 for t in TEXTS]
        checker = reference("albert-imdb", long_texts)
        results = []
        load = threading.Thread(
            target=lambda: results.append(
                run_load(s.port, long_texts, checker, clients=8, requests=8, texts_per_request=16)
            )
        )
        load.start()
        wait_for(s.port, "albert-imdb", lambda st: st["running"] > 0 and st["queued"] >= 3)
        s.proc.send_signal(signal.SIGTERM)
        refused_after = None  # no new connections once draining: poll (a fixed sleep raced the drain)
        started = time.monotonic()
        while time.monotonic() - started < 5:
            try:
                socket.create_connection(("127.0.0.1", s.port), timeout=5).close()
            except ConnectionRefusedError:
                refused_after = time.monotonic() - started
                break
            time.sleep(0.01)
        still_running = load.is_alive()
        assert refused_after is not None, "still accepting connections 5 s after SIGTERM"
        assert still_running, "the in-flight requests finished before the listener closed: nothing drained"
        load.join(300)
        assert s.proc.wait(120) == 0, s.output()
        assert results[0].failures == [] and len(results[0].latencies_s) == 8
        assert "edgeclf serve: stopped" in s.output()
    finally:
        s.__exit__()


def test_without_the_extra_serve_says_what_to_install_and_exits_2():
    code = (
        "import sys; sys.modules['starlette'] = None; from edgeclf.cli import main; sys.exit(main(['serve']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "pip install 'edgeclf[serve]'" in r.stderr


def test_bad_settings_an_unknown_model_and_a_taken_port_exit_2(extra):
    r = subprocess.run(
        [sys.executable, "-m", "edgeclf", "serve", "--max-queue", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--max-queue must be >= 1" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "edgeclf", "serve", "--port", "0", "--model", "no-such-model"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "no embedded model named 'no-such-model'" in r.stderr
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        r = subprocess.run(
            [sys.executable, "-m", "edgeclf", "serve", "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_serve_uses_no_network_but_its_own_socket_and_writes_nothing(extra, checkers, tmp_path):
    """Under strace -f (tests/syscalls.py): the only inet socket is the listening one, on 127.0.0.1."""
    from .syscalls import Sandbox, need_strace, traced

    need_strace()
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    box = Sandbox.create(tmp_path / "box")
    argv = [
        sys.executable,
        "-m",
        "edgeclf",
        "serve",
        "--port",
        str(port),
        "-m",
        "keras-imdb",
        "-m",
        "albert-imdb",
    ]
    with traced(argv, box) as proc:
        deadline = time.monotonic() + 180
        while get_json(port, "/health", timeout=5)[0] != 200:
            assert time.monotonic() < deadline and proc.popen.poll() is None, (
                "the traced server did not start"
            )
            time.sleep(0.2)
        for model, n in (("keras-imdb", 64), ("albert-imdb", 16)):
            res = run_load(port, TEXTS, checkers[model], clients=8, requests=n, timeout_s=300)
            assert res.failures == []
    t = proc.trace
    assert t.returncode == 0, t.stderr[-2000:]
    assert set(t.listening) == {("127.0.0.1", port)}  # listen() twice: edgeclf's bind, then asyncio's
    t.assert_private(listen=[("127.0.0.1", port)])  # no other inet socket, no DNS, no file written
    assert box.leftovers() == []  # HOME and XDG_CACHE_HOME untouched


def test_accepted_connections_have_nagle_off(extra):
    """uvicorn issue #3149: with a listener of proto 0, keep-alive answers waited ~40 ms each."""
    from edgeclf.serve.server import bind

    async def accepted_nodelay() -> int:
        seen = asyncio.get_running_loop().create_future()

        async def on_client(reader, writer):
            seen.set_result(
                writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            )
            writer.close()

        listener = bind("127.0.0.1", 0)
        server = await asyncio.start_server(on_client, sock=listener)
        async with server:
            _, w = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
            value = await asyncio.wait_for(seen, 10)
            w.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0
