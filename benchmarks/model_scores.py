"""Scores of bundle variants on a benchmark's texts, through the runtime, cached by model file.

The model tables score every variant of several bundles on 25,000 reviews;
a re-run that only re-renders a table, or a variant whose file did not
change, must not pay for that again. Probabilities are cached under /tmp by
the sha256 of the model file, the tokenizer settings and the batching, and
token ids once per tokenizer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from calibration import fit_temperature, temperature_helps

import edgeclf
from edgeclf.bundle import open_bundle
from edgeclf.classifier import DEFAULT_BATCH_TOKENS

CACHE = Path("/tmp/edgeclf-model-table")


def temperature_for(
    src: Path | str, variant: str, texts: list[str], y: np.ndarray, tag: str
) -> tuple[float, bool]:
    """(T fitted on the validation texts, whether to store it: :func:`temperature_helps`)."""
    lv = logits_from(proba_of(src, variant, texts, tag))
    return fit_temperature(lv, y), temperature_helps(lv, y)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def proba_of(
    bundle: Path | str, variant: str, texts: list[str], tag: str, truncate: bool = False
) -> np.ndarray:
    """Probabilities through the runtime (the path users run), cached by the hashes of the
    model file, the tokenizer settings (the same file reads other ids with another truncation
    side) and the batching. The texts are tokenized once per tokenizer (:func:`ids_of`)."""
    b = open_bundle(bundle)
    batching = [128, DEFAULT_BATCH_TOKENS]  # int8 scores move with the batches
    windows = b.manifest.long_texts  # a bundle that reads long texts in windows is measured so
    use_windows = windows.mode == "windows" and not truncate
    reads = [windows.mode, windows.stride, windows.max_windows] if use_windows else []
    tok_key = _tokenizer_key(b.manifest, batching, *reads)
    key = f"{_sha(b.path(b.manifest.variants[variant].file))}-{tok_key}-{tag}-{len(texts)}"
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    clf = edgeclf.load(bundle, variant=variant, providers="cpu", batch_size=128, temperature=1.0)
    p = clf.predict_proba(texts) if use_windows else clf.proba_from_ids(ids_of(bundle, texts, tag))
    np.save(path, p)
    return p


def _tokenizer_key(manifest: Any, *more: Any) -> str:
    tok = json.dumps([manifest.tokenizer.config, manifest.max_length, *more], sort_keys=True, default=str)
    return hashlib.sha256(tok.encode()).hexdigest()[:12]


def ids_of(bundle: Path | str, texts: list[str], tag: str) -> list[list[int]]:
    """The bundle tokenizer's ids for ``texts``, cached per tokenizer settings (every variant of a
    bundle reads the same ids)."""
    man = open_bundle(bundle).manifest
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]
    path = CACHE / f"ids-{_tokenizer_key(man)}-{tag}-{digest}.json"
    if path.is_file():
        return json.loads(path.read_text())
    ids = edgeclf.load(bundle, providers="cpu").tokenizer.encode_batch(texts)
    CACHE.mkdir(exist_ok=True)
    path.write_text(json.dumps(ids))
    return ids


def cached(key: str, fn) -> np.ndarray:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{key}.npy"
    if not path.is_file():
        np.save(path, fn())
    return np.load(path)


def logits_from(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(proba, 1e-12, 1.0))
