"""The HTTP app: ``POST /predict``, ``GET /models``, ``GET /health`` (Starlette).

Every error is a JSON body ``{"error": "..."}`` with the status that names
the problem, and the server stays up:

==========  ==================================================================
400         the body is not JSON (or not UTF-8)
404         unknown model (or path)
413         a limit: body bytes (``--max-body-bytes``), texts per request
            (``--max-texts``) or characters per text (``--max-chars``)
422         valid JSON of the wrong shape or types, unknown fields
503         the model's queue is full (``--max-queue``), with ``Retry-After``
==========  ==================================================================

An empty or whitespace-only text is not a request error: like an empty row
in ``edgeclf predict``, it gets ``label`` and ``score`` null and an
``error`` naming its 0-based index in ``texts``, and the other texts are
classified. A multi-label model answers a list of labels in ``label``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..classifier import Classifier
from ..texts import InputError, Prediction, shape_results, text_error, thresholds_of
from .batcher import Batcher, Closed, QueueFull

#: seconds a client is told to wait after a 503 (a batch takes milliseconds; the queue drains fast)
RETRY_AFTER_S = 1
FIELDS = ("texts", "model", "probabilities")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_texts: int
    max_chars: int

    def check(self) -> None:
        for name, value in vars(self).items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")


@dataclass
class Served:
    """One loaded model: its classifier, shared by every request through its batcher."""

    classifier: Classifier
    batcher: Batcher

    @property
    def name(self) -> str:
        return self.classifier.manifest.name

    def describe(self) -> dict[str, Any]:
        clf, b = self.classifier, self.batcher
        return {
            **clf.manifest.summary(),
            "loaded": {
                "variant": clf.variant.name,
                "providers": list(clf.providers),
                "max_length": clf.max_length,
                "batching": {
                    "enabled": b.enabled,
                    "max_batch": b.max_batch,
                    "max_wait_ms": b.max_wait_s * 1000,
                    "max_queue": b.max_queue,
                    "batch_tokens": clf.batch_tokens,  # padded tokens per ONNX run (None: no limit)
                },
            },
        }


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True)
class PredictRequest:
    texts: list[str]
    model: str
    probabilities: bool


def parse_request(data: Any, models: dict[str, Served], default: str, limits: Limits) -> PredictRequest:
    """Check a decoded ``/predict`` body; raise :class:`HTTPError` naming the field and limit."""
    if not isinstance(data, dict):
        raise HTTPError(422, f'the body must be a JSON object like {{"texts": ["..."]}}, got {_kind(data)}')
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise HTTPError(422, f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    if "texts" not in data:
        raise HTTPError(422, "'texts' is required: a list of strings")
    texts = data["texts"]
    if not isinstance(texts, list):
        raise HTTPError(422, f"'texts' must be a list of strings, got {_kind(texts)}")
    if len(texts) > limits.max_texts:
        raise HTTPError(
            413, f"{len(texts):,} texts in one request, over the limit of {limits.max_texts:,} (--max-texts)"
        )
    for i, text in enumerate(texts):  # the row pipeline's wording; these two fail the whole request
        if not isinstance(text, str) or len(text) > limits.max_chars:
            reason = text_error(text, limits.max_chars, limit_name="--max-chars")
            raise HTTPError(413 if isinstance(text, str) else 422, str(InputError(i, reason)))
    model = data.get("model", default)
    if not isinstance(model, str):
        raise HTTPError(422, f"'model' must be a string, got {_kind(model)}")
    if model not in models:
        raise HTTPError(404, f"unknown model {model!r}; this server has: {', '.join(models)}")
    probabilities = data.get("probabilities", False)
    if not isinstance(probabilities, bool):
        raise HTTPError(422, f"'probabilities' must be true or false, got {_kind(probabilities)}")
    return PredictRequest(texts, model, probabilities)


def text_problem(text: str) -> str | None:
    """Why a text cannot be classified although the request is valid: the row pipeline's reasons,
    so ``edgeclf predict``, serve and Spark word them alike (length limits answer 413 above)."""
    return text_error(text)


def _item(pred: Prediction, probabilities: bool, multi_label: bool) -> dict[str, Any]:
    """One text's answer: label (a list for a multi-label model) and score, or the error."""
    if pred.error is not None:
        item: dict[str, Any] = {"label": None, "score": None, "error": pred.error}
    else:
        item = {"label": list(pred.labels) if multi_label else pred.label, "score": pred.score}
    if probabilities:
        item["probabilities"] = pred.probabilities
    return item


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    too_big = f"request body over the limit of {limit:,} bytes (--max-body-bytes)"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():  # chunked uploads are counted as they arrive
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes) -> Any:
    """The JSON body; JSON on the wire is UTF-8 (RFC 8259), a leading BOM tolerated as the RFC allows."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPError(
            400, f"invalid JSON: the body is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise HTTPError(400, f"invalid JSON: {exc}") from None


async def _answer(served: Served, req: PredictRequest) -> dict[str, Any]:
    """Classify the request's acceptable texts through the model's batcher; refusals stay in place."""
    problems = [text_problem(t) for t in req.texts]
    good = [t for t, p in zip(req.texts, problems, strict=True) if p is None]
    probs: Any = []
    if good:
        try:
            future = served.batcher.submit(good)
        except QueueFull as exc:
            raise HTTPError(503, f"busy: {exc}; retry later", {"Retry-After": str(RETRY_AFTER_S)}) from None
        except Closed as exc:
            raise HTTPError(503, str(exc), {"Retry-After": str(RETRY_AFTER_S)}) from None
        probs = await asyncio.wrap_future(future)
    clf = served.classifier
    problems = [p if p is None else str(InputError(i, p)) for i, p in enumerate(problems)]
    results = shape_results(probs, problems, clf.labels, thresholds_of(clf))
    multi = clf.manifest.head.kind == "multi_label"
    out = [_item(r, req.probabilities, multi) for r in results]
    return {"model": served.name, "variant": clf.variant.name, "predictions": out}


def create_app(models: dict[str, Served], default: str, limits: Limits) -> Starlette:
    """The Starlette app over already-loaded models (the first is ``default``)."""

    async def predict(request: Request) -> Response:
        body = await _read_body(request, limits.max_body_bytes)
        req = parse_request(_decode(body), models, default, limits)
        return JSONResponse(await _answer(models[req.model], req))

    async def list_models(request: Request) -> Response:
        return JSONResponse({"default": default, "models": [m.describe() for m in models.values()]})

    async def health(request: Request) -> Response:
        status = {}
        for name, m in models.items():
            b = m.batcher
            status[name] = {"queued": b.queued, "running": b.running, **vars(b.stats)}
        return JSONResponse({"status": "ok", "models": status})

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPError)
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    async def on_starlette_error(request: Request, exc: Exception) -> Response:  # 404 path, 405 method
        assert isinstance(exc, HTTPException)
        message = exc.detail
        if exc.status_code == 404:
            message = (
                f"no such path {request.url.path!r}; this server has POST /predict, GET /models, GET /health"
            )
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        return Response(status_code=400)  # nobody is left to read it

    async def on_crash(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={
            HTTPError: on_http_error,
            HTTPException: on_starlette_error,
            ClientDisconnect: on_disconnect,
            Exception: on_crash,
        },
    )
