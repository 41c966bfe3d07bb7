"""The classifier: texts -> token ids -> batches -> onnxruntime -> labels.

Thread safety: a :class:`Classifier` holds no per-call state. The tokenizer
is pure (its caches are dicts written with single, GIL-atomic operations) and
``InferenceSession.run`` is safe to call from many threads, so one instance
can serve a whole desktop app. A call takes the session and the tokenizer
once, when it starts, and holds them until it returns: :meth:`Classifier.close`
on another thread never cuts it short.

Long texts: ``truncate`` (the tokenizer keeps its side) or ``windows``
(edgeclf.windows: overlapping windows batched with the other rows, pooled per text).

Batching: for bundles padded to the longest member (ALBERT), texts are
grouped by token length before batching, so a batch of one long review and
63 short ones does not pay for 63 rows of padding, and a batch holds at most
``batch_tokens`` padded tokens as well as ``batch_size`` texts: on a CPU a
transformer runs long texts faster in small batches (its attention scores
grow with batch x length^2 and fall out of the cache; benchmarks/
bench_predict.py). Results come back in input order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np

from . import bundle as _bundle
from . import windows as _windows
from .session import make_session, select
from .texts import DEFAULT_MAX_CHARS, InputError, Prediction, check_texts, classify_texts
from .tokenizers import Tokenizer, build
from .windows import Encoded

__all__ = ["DEFAULT_MAX_CHARS", "Classifier", "ClosedError", "Encoded", "InputError", "Prediction", "load"]

#: texts per ``session.run`` for bundles padded to the longest text
DEFAULT_BATCH_SIZE = 64
#: texts per ``session.run`` for fixed-width bundles (padded to max_length): every row costs the
#: same, so bigger batches only amortise the per-run overhead
FIXED_WIDTH_BATCH_SIZE = 256
#: most padded tokens per batch for bundles padded to the longest text, on the CPU (None: only
#: batch_size). A cache effect of CPUs: "auto" means this on the CPU provider, no limit on GPUs.
DEFAULT_BATCH_TOKENS = 2048


def resolve_batch_tokens(batch_tokens: int | str | None, provider: str) -> int | None:
    """``"auto"``: :data:`DEFAULT_BATCH_TOKENS` on the CPU provider, ``None`` (no limit) on others."""
    if batch_tokens == "auto":
        return DEFAULT_BATCH_TOKENS if provider == "CPUExecutionProvider" else None
    if batch_tokens is not None and (not isinstance(batch_tokens, int) or batch_tokens < 1):
        raise ValueError("batch_tokens must be an int >= 1, None or 'auto'")
    return batch_tokens


class ClosedError(RuntimeError):
    """The classifier was closed (:meth:`Classifier.close`); load the model again to predict."""


class Classifier:
    """A loaded bundle variant, ready to predict. Build it with :func:`load`."""

    def __init__(
        self,
        bundle: _bundle.Bundle,
        *,
        variant: str | None = None,
        providers: str | Sequence[str] | None = "auto",
        threads: int | None = None,
        batch_size: int | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        session_options: dict[str, Any] | None = None,
        max_length: int | None = None,
        temperature: float | None = None,
        batch_tokens: int | str | None = "auto",
        long_texts: str | None = None,
    ) -> None:
        manifest = bundle.manifest
        self.bundle = bundle
        self.manifest = manifest
        chosen_providers, variant_name = select(manifest, providers, variant)
        self.variant = manifest.variant(variant_name)
        #: logits are divided by this before the softmax (the variant's fitted calibration)
        self.temperature = float(temperature if temperature is not None else self.variant.temperature)
        if not self.temperature > 0:
            raise ValueError("temperature must be > 0")
        self.labels = manifest.labels
        if batch_size is None:
            batch_size = FIXED_WIDTH_BATCH_SIZE if manifest.padding == "max_length" else DEFAULT_BATCH_SIZE
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        resolve_batch_tokens(batch_tokens, "CPUExecutionProvider")  # refuse a bad value before loading
        self.max_chars = max_chars
        files = {key: bundle.read_verified(ref) for key, ref in manifest.tokenizer.files.items()}
        if max_length is not None and not (
            1 <= max_length <= manifest.max_length and manifest.padding == "longest"
        ):
            raise ValueError(
                f"max_length must be between 1 and {manifest.max_length} and the bundle padded to the longest "
                f"text (this one: padding={manifest.padding!r})"
            )
        self.max_length = max_length or manifest.max_length
        self.tokenizer: Tokenizer = build(
            manifest.tokenizer.kind, files, manifest.tokenizer.config, self.max_length
        )
        self._pad_id = self.tokenizer.pad_id  # kept: padding must not need the tokenizer after close()
        spec = manifest.long_texts
        #: how texts longer than the window are read by default: "truncate" or "windows"
        self.long_texts = _windows.check_mode(long_texts or spec.mode)
        #: the window layout (None: the bundle cannot do windows: fixed width or no ``wrap``)
        self.windows = (
            None
            if manifest.padding == "max_length"
            else _windows.plan(self.tokenizer, self.max_length, spec.stride, spec.max_windows)
        )
        self._check_mode(self.long_texts)
        model_bytes = bundle.read_verified(self.variant.file)
        self.session = make_session(
            model_bytes, providers=chosen_providers, threads=threads, **(session_options or {})
        )
        self.providers = self.session.get_providers()
        self.batch_tokens = resolve_batch_tokens(batch_tokens, self.providers[0])
        self._input_names = [i.name for i in manifest.inputs]
        self._input_dtypes = {i.name: np.dtype(i.dtype) for i in manifest.inputs}
        self._output_name = manifest.outputs[0].name
        self._fixed = manifest.padding == "max_length"
        self._id_map: np.ndarray | None = None
        if self.variant.id_map is not None:  # vocabulary-pruned model: remap tokenizer ids to its rows
            self._id_map = np.frombuffer(bundle.read_verified(self.variant.id_map), dtype="<i4").astype(
                np.int64
            )

    @property
    def runs_on(self) -> str:
        """What actually runs: ``"<variant> on <provider>"`` (e.g. ``"int8 on CPU"``)."""
        return f"{self.variant.name} on {self.providers[0].removesuffix('ExecutionProvider')}"

    def __repr__(self) -> str:
        return (
            f"Classifier({self.manifest.name!r}, variant={self.variant.name!r}, providers={self.providers})"
        )

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Free the ONNX session and the tokenizer's tables; later predictions raise :class:`ClosedError`.

        Idempotent. A prediction already running on another thread finishes
        normally: it took the session and the tokenizer when it started and
        holds them until it returns, so memory comes back when the last such
        call returns. ``with edgeclf.load(...) as clf:``
        closes on leaving the block.
        """
        self.session = None
        self.tokenizer = None  # type: ignore[assignment]

    @property
    def closed(self) -> bool:
        return self.session is None

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _closed_error(self) -> ClosedError:
        return ClosedError(
            f"classifier {self.manifest.name!r} (variant {self.variant.name!r}) is closed; "
            "load the model again with edgeclf.load()"
        )

    # ------------------------------------------------------------ public API

    def predict(self, texts: Iterable[str] | str, *, long_texts: str | None = None) -> list[Prediction]:
        """Label and score per text, in input order. A bare string is one text.

        A text that cannot be classified (not a string, empty or whitespace
        only, over ``max_chars``) raises :class:`InputError` naming its 0-based index.
        ``long_texts``: ``"truncate"`` or ``"windows"`` for this call (default: :attr:`long_texts`).
        """
        if isinstance(texts, str):
            texts = [texts]
        return classify_texts(
            self,
            list(texts),
            errors="raise",
            predict_proba=lambda good: self.predict_proba(good, long_texts=long_texts),
        )

    def predict_proba(self, texts: Iterable[str] | str, *, long_texts: str | None = None) -> np.ndarray:
        """Probabilities, shape ``(n_texts, n_labels)``, in input order; a text that
        cannot be classified raises :class:`InputError` (see :meth:`predict`)."""
        session, tokenizer = self.session, self.tokenizer  # held until this call returns
        if session is None or tokenizer is None:
            raise self._closed_error()
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        check_texts(texts, self.max_chars)
        enc = self.encode_texts(texts, long_texts=long_texts, tokenizer=tokenizer)
        return self.proba_from_encoded(enc, len(texts), session=session)

    def encode_texts(
        self, texts: Sequence[str], *, long_texts: str | None = None, tokenizer: Tokenizer | None = None
    ) -> Encoded:
        """Token ids of checked texts: one row per text, or per window (``long_texts="windows"``);
        :meth:`Encoded.windows_per_text` counts them."""
        mode = self._check_mode(long_texts or self.long_texts)
        tokenizer = tokenizer or self.tokenizer
        if tokenizer is None:
            raise self._closed_error()
        if mode == "windows" and self.windows is not None:
            return _windows.encode(tokenizer, texts, self.windows)
        return Encoded(tokenizer.encode_batch(texts))

    def proba_from_encoded(
        self,
        enc: Encoded,
        n_texts: int,
        *,
        session: Any = None,
        progress: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """Probabilities per text from :meth:`encode_texts`' rows, windows pooled per text
        (mean logits; multi-label heads: each label's highest probability).
        ``progress(rows)`` is called after each ``session.run`` with the rows it ran."""
        if enc.owner is None:
            return self.proba_from_ids(enc.ids, session=session, progress=progress)
        session = self._session(session)
        raw = np.empty((len(enc.ids), len(self.labels)), dtype=np.float32)
        for idx in self.batches(enc.ids):
            raw[idx] = self._raw([enc.ids[i] for i in idx], session)
            if progress is not None:
                progress(len(idx))
        if self.manifest.head.kind == "multi_label":
            return _windows.pool(self._to_proba(raw), enc.owner, n_texts, "max")
        return self._to_proba(_windows.pool(raw, enc.owner, n_texts, "mean"))

    def proba_from_ids(
        self,
        ids: Sequence[Sequence[int]],
        *,
        session: Any = None,
        progress: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """Run already-tokenized sequences, one row each (lets profilers time the two halves apart)."""
        session = self._session(session)
        n = len(ids)
        out = np.empty((n, len(self.labels)), dtype=np.float32)
        for idx in self.batches(ids):
            out[idx] = self._to_proba(self._raw([ids[i] for i in idx], session))
            if progress is not None:
                progress(len(idx))
        return out

    def batches(self, ids: Sequence[Sequence[int]]) -> list[list[int]]:
        """The indices of ``ids`` each ``session.run`` gets, in run order.

        Fixed-width bundles: ``batch_size`` at a time, in order. Otherwise
        sorted by length (batches carry little padding), and a batch also stops
        before ``(texts + 1) x longest`` would exceed ``batch_tokens``. Depends on
        the lengths alone, never on threads or timing, so outputs are repeatable.
        """
        n, bs = len(ids), self.batch_size
        if self._fixed:
            return [list(range(s, min(s + bs, n))) for s in range(0, n, bs)]
        order = sorted(range(n), key=lambda i: len(ids[i]))
        budget = self.batch_tokens
        out: list[list[int]] = []
        batch: list[int] = []
        for i in order:  # ascending lengths: the newest text is the batch's longest
            if batch and (
                len(batch) == bs or (budget is not None and (len(batch) + 1) * len(ids[i]) > budget)
            ):
                out.append(batch)
                batch = []
            batch.append(i)
        if batch:
            out.append(batch)
        return out

    # ------------------------------------------------------------ internals

    def _session(self, session: Any) -> Any:
        session = session if session is not None else self.session
        if session is None:
            raise self._closed_error()
        return session

    def _check_mode(self, mode: str) -> str:
        if _windows.check_mode(mode) == "windows" and self.windows is None:
            raise ValueError(
                f"long_texts='windows' needs a transformer bundle (padded to the longest text, a "
                f"tokenizer with specials); {self.manifest.name!r} reads a fixed window: use 'truncate'"
            )
        return mode

    def _raw(self, seqs: list[Sequence[int]], session: Any) -> np.ndarray:
        """The model's output rows for ``seqs`` (logits, or keras' probability)."""
        raw = session.run([self._output_name], self._feeds(seqs))[0]
        return np.asarray(raw, dtype=np.float32).reshape(len(seqs), -1)

    def _feeds(self, seqs: list[Sequence[int]]) -> dict[str, np.ndarray]:
        ids, mask = pad(seqs, self.manifest.max_length if self._fixed else None, self._pad_id)
        if self._id_map is not None:
            if ids.size and int(ids.max()) >= len(self._id_map):
                raise ValueError(
                    f"token id {int(ids.max())} outside the variant's id map ({len(self._id_map)} ids)"
                )
            ids = self._id_map[ids]
        feeds = {}
        for name in self._input_names:
            if name == "attention_mask":
                value = mask
            elif name == "token_type_ids":
                value = np.zeros_like(ids)
            else:
                value = ids
            feeds[name] = value.astype(self._input_dtypes[name], copy=False)
        return feeds

    def _to_proba(self, raw: np.ndarray) -> np.ndarray:
        if self.manifest.output_kind == "sigmoid":
            p = raw.reshape(len(raw), -1)[:, 0].astype(np.float32)
            p = np.clip(p, 0.0, 1.0)
            return np.stack([1.0 - p, p], axis=1)
        if self.temperature != 1.0:
            raw = raw / self.temperature
        if self.manifest.head.kind == "multi_label":  # independent labels: a sigmoid each
            return (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)
        z = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def pad(seqs: Sequence[Sequence[int]], width: int | None, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad sequences into ``(ids, mask)`` int64 / bool arrays.

    ``width=None`` pads to the longest member. Shared by training code, so a
    model is trained on exactly the arrays it is served.
    """
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    if width is None:
        width = max(1, int(lengths.max())) if len(seqs) else 1
    elif len(seqs) and int(lengths.max()) > width:
        raise ValueError(f"a sequence of {int(lengths.max())} tokens exceeds width {width}")
    flat = np.fromiter(chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum()))
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.arange(width) < lengths[:, None]
    ids[mask] = flat  # row-major fill: each row's tokens, left-aligned
    return ids, mask


def load(
    name_or_path: str | os.PathLike[str] = "keras-imdb",
    *,
    variant: str | None = None,
    providers: str | Sequence[str] | None = "auto",
    threads: int | None = None,
    batch_size: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    session_options: dict[str, Any] | None = None,
    max_length: int | None = None,
    temperature: float | None = None,
    batch_tokens: int | str | None = "auto",
    long_texts: str | None = None,
) -> Classifier:
    """Load an embedded model by name, or a bundle directory, verified.

    ``variant``: ``"fp32"``, ``"fp16"``, ``"int8"`` ... (default: what the
    bundle prefers on the chosen provider, see :func:`edgeclf.session.select`).
    ``providers``: ``"auto"``, ``"cpu"``, ``"cuda"`` or a list of onnxruntime
    provider names. ``threads``: intra-op threads (default: onnxruntime's).
    ``session_options``: extra keywords for :func:`edgeclf.session.make_session`
    (``spinning``, ``inter_threads``, ``graph_optimization``).
    ``max_length``: truncate texts to fewer tokens than the bundle allows
    (transformer bundles only): faster, usually a little less accurate.
    ``temperature``: softmax temperature for logit bundles (default: the one
    the variant's manifest fitted on validation data, else 1.0, i.e. none).
    ``batch_size`` / ``batch_tokens``: most texts / padded tokens per
    ``session.run`` (``batch_size`` default: 256 for fixed-width bundles, 64
    otherwise; ``batch_tokens`` applies to bundles padded to the longest
    text; ``"auto"``: 2,048 on the CPU, no limit on a GPU; ``None``: no limit).
    ``long_texts``: ``"truncate"`` or ``"windows"`` (default: the bundle's ``long_texts``, else
    truncate); transformer bundles only; per call: ``predict(..., long_texts=...)``.
    """
    return Classifier(
        _bundle.open_bundle(name_or_path),
        variant=variant,
        providers=providers,
        threads=threads,
        batch_size=batch_size,
        max_chars=max_chars,
        session_options=session_options,
        max_length=max_length,
        temperature=temperature,
        batch_tokens=batch_tokens,
        long_texts=long_texts,
    )
