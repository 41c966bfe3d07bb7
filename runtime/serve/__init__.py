"""``edgeclf serve``: an HTTP service around loaded models (the ``serve`` extra).

This module is imported by the command line to register the subcommand, so
it uses the standard library only: Starlette and uvicorn are imported when
the server starts, and their absence is a clear error naming the extra.

- ``batcher.py``: the dynamic batcher (bounded queue, maximum wait), one per model
- ``app.py``: the Starlette app: routes, request limits, JSON errors
- ``server.py``: model loading, the listening socket, uvicorn, graceful shutdown

See docs/serve.md.
"""

from __future__ import annotations

import argparse
import sys

from ..texts import DEFAULT_MAX_CHARS, LONG_TEXTS

EXTRA_HINT = "edgeclf serve needs: pip install 'edgeclf[serve]'"

DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_TEXTS = 256
DEFAULT_MAX_BATCH = 64
DEFAULT_BATCH_WAIT_MS = 0.0
DEFAULT_MAX_QUEUE = 256


class MissingExtra(ImportError):
    pass


def require() -> None:
    """Import-check the extra's packages before any model is loaded."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(f"{EXTRA_HINT} ({exc.name or exc} is not installed)") from None


def _batch_tokens(value: str) -> int | str | None:
    if value in ("auto", "none"):
        return None if value == "none" else value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, auto or none, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return n


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve models over HTTP with dynamic batching (needs edgeclf[serve])",
        description="POST /predict, GET /models, GET /health on 127.0.0.1:8080 by default. "
        "Concurrent requests are batched into one ONNX run per model (see docs/serve.md).",
    )
    p.add_argument(
        "-m",
        "--model",
        action="append",
        default=None,
        help="embedded model name or bundle directory; repeat to serve several "
        "(the first is the default; default: keras-imdb)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 for any free one (default: {DEFAULT_PORT})"
    )
    p.add_argument(
        "--provider", default="auto", help="auto, cpu, cuda or an onnxruntime provider name (default: auto)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="intra-op threads (default: onnxruntime's choice)"
    )
    p.add_argument(
        "--long-texts",
        choices=LONG_TEXTS,
        default=None,
        help="texts longer than a model reads: truncate or windows (transformer bundles), for every "
        "--model (default: each bundle's choice)",
    )
    g = p.add_argument_group("batching")
    g.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        help=f"texts merged into one ONNX run at most (default: {DEFAULT_MAX_BATCH})",
    )
    g.add_argument(
        "--batch-wait-ms",
        type=float,
        default=DEFAULT_BATCH_WAIT_MS,
        help="how long a batch waits for more requests once its first one is taken "
        f"(default: {DEFAULT_BATCH_WAIT_MS:g})",
    )
    g.add_argument(
        "--batch-tokens",
        type=_batch_tokens,
        default="auto",
        metavar="N|auto|none",
        help="padded tokens per ONNX run at most, splitting a merged ALBERT batch (default: auto, "
        "2,048 on the CPU provider and no limit on a GPU; none: one run per merged batch)",
    )
    g.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULT_MAX_QUEUE,
        help=f"requests waiting per model; beyond it: 503 + Retry-After (default: {DEFAULT_MAX_QUEUE})",
    )
    g.add_argument(
        "--no-batching",
        nargs="*",
        metavar="MODEL",
        default=None,
        help="run each request alone (one ONNX run per request); followed by model names: only for "
        "those (e.g. batch keras-imdb but not albert-imdb on a small CPU, see docs/serve.md)",
    )
    g = p.add_argument_group("limits")
    g.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"request body limit, 413 beyond (default: {DEFAULT_MAX_BODY_BYTES:,})",
    )
    g.add_argument(
        "--max-texts",
        type=int,
        default=DEFAULT_MAX_TEXTS,
        help=f"texts per request, 413 beyond (default: {DEFAULT_MAX_TEXTS})",
    )
    g.add_argument(
        "--max-chars",
        type=int,
        default=DEFAULT_MAX_CHARS,
        help=f"characters per text, 413 beyond (default: {DEFAULT_MAX_CHARS:,}, as every front end; "
        "the body limit usually applies first)",
    )
    p.add_argument(
        "--graceful-timeout",
        type=float,
        default=30.0,
        help="seconds SIGTERM waits for in-flight requests (default: 30)",
    )
    p.add_argument(
        "--access-log", action="store_true", help="log each request (client, method, path, status) on stderr"
    )


def main(args: argparse.Namespace) -> int:
    """Run ``edgeclf serve``; returns the exit code (2: missing extra or bad settings)."""
    try:
        require()
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return 2
    from .server import serve

    return serve(args)
