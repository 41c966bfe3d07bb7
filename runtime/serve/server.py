"""Load the models, bind the socket, run uvicorn, shut down gracefully.

Shutdown: on SIGTERM (or SIGINT) uvicorn stops accepting connections,
closes idle keep-alive connections and waits up to ``--graceful-timeout``
seconds for the requests in flight; then each batcher finishes what is still
queued and the process exits 0. uvicorn re-raises the signal it caught once
it is done (so that the default handler would kill the process); we install
a handler that only records it, so a drained shutdown is a clean exit.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys

import uvicorn

from ..classifier import load
from .app import Limits, Served, create_app
from .batcher import Batcher

log = logging.getLogger("edgeclf.serve")


def load_models(args: argparse.Namespace) -> dict[str, Served]:
    """One Classifier per model, shared by every request through its own batcher."""
    if args.max_batch < 1:
        raise ValueError("--max-batch must be >= 1")
    if args.batch_wait_ms < 0:
        raise ValueError("--batch-wait-ms must be >= 0")
    if args.max_queue < 1:
        raise ValueError("--max-queue must be >= 1")
    served: dict[str, Served] = {}
    for ref in args.model or ["keras-imdb"]:
        # batch_size >= max_batch: a merged batch is one predict_proba call. Its token limit
        # (--batch-tokens; "auto": 2,048 padded tokens on the CPU provider, none on a GPU) splits a
        # merged batch of long texts into cache-sized ONNX runs (docs/serve.md)
        clf = load(
            ref,
            providers=args.provider,
            threads=args.threads,
            batch_size=args.max_batch,
            batch_tokens=args.batch_tokens,
            long_texts=args.long_texts,
        )
        name = clf.manifest.name
        if name in served:
            raise ValueError(f"two models named {name!r} (from {ref!r}); serve each name once")
        served[name] = Served(
            clf,
            Batcher(
                clf.predict_proba,
                max_batch=args.max_batch,
                max_wait_s=args.batch_wait_ms / 1000,
                max_queue=args.max_queue,
                enabled=_batched(name, ref, args.no_batching),
                name=name,
            ),
        )
    unknown = set(args.no_batching or ()) - set(served) - set(args.model or ["keras-imdb"])
    if unknown:
        raise ValueError(f"--no-batching names a model not served: {', '.join(sorted(unknown))}")
    return served


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, created with ``proto=IPPROTO_TCP`` (as :func:`socket.getaddrinfo` gives it).

    asyncio turns Nagle's algorithm off (TCP_NODELAY) only on accepted sockets whose ``proto`` is
    IPPROTO_TCP, and they inherit it from the listener: ``socket.create_server`` leaves it 0, and
    then every keep-alive request after the first waits ~40 ms for the client's delayed ACK
    between uvicorn's header and body writes (uvicorn issue #3149).
    """
    try:
        family, type_, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, type_, proto or socket.IPPROTO_TCP)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(args: argparse.Namespace) -> int:
    limits = Limits(args.max_body_bytes, args.max_texts, args.max_chars)
    limits.check()
    if args.graceful_timeout <= 0:
        raise ValueError("--graceful-timeout must be > 0")
    sock = bind(args.host, args.port)  # before minutes of loading: a taken port fails fast
    models = load_models(args)
    default = next(iter(models))
    app = create_app(models, default, limits)
    config = uvicorn.Config(
        app,
        lifespan="off",  # models are loaded above and closed below
        access_log=args.access_log,
        timeout_graceful_shutdown=args.graceful_timeout,
        log_level="info",
        server_header=False,
    )
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"edgeclf serve: listening on http://{shown}:{port} "
        f"(models: {', '.join(f'{n}/{m.classifier.variant.name}' for n, m in models.items())}; "
        f"batching: {_batching(models, args)})",
        file=sys.stderr,
        flush=True,
    )
    if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
        print(
            f"edgeclf serve: warning: {host} is reachable from other machines, and this server has no TLS "
            "and no authentication: put a reverse proxy in front (docs/serve.md)",
            file=sys.stderr,
            flush=True,
        )
    # what uvicorn restores and re-raises once drained: a no-op, so a drained stop exits 0
    previous = {s: signal.signal(s, _after_drain) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for m in models.values():  # requests still queued (none after a drained shutdown) get answers
            m.batcher.close(timeout=args.graceful_timeout)
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
    print("edgeclf serve: stopped", file=sys.stderr, flush=True)
    return 0


def _after_drain(signum: int, frame: object) -> None:
    """The signal already did its work: uvicorn stopped and drained on it."""


def _batched(name: str, ref: str, no_batching: list[str] | None) -> bool:
    """``--no-batching`` absent: batch; alone: batch nothing; with names: batch the others."""
    if no_batching is None:
        return True
    return bool(no_batching) and not {name, ref} & set(no_batching)


def _batching(models: dict[str, Served], args: argparse.Namespace) -> str:
    on = [n for n, m in models.items() if m.batcher.enabled]
    if not on:
        return "off"
    which = "" if len(on) == len(models) else f" for {', '.join(on)}"
    return f"max {args.max_batch} texts, wait {args.batch_wait_ms:g} ms{which}"
