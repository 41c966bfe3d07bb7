"""The accuracy gate of ``edgeclf quantize``, and which layers cost the most.

A candidate int8 model is measured against its float source through
:func:`edgeclf.load` on a scratch copy of the bundle (the path users run,
tokenizer and id map included), on labelled validation texts. It passes when
its accuracy is at most ``max_loss`` points below the source's. When it does
not, :func:`layer_costs` quantizes one layer at a time and reports how far
each moves the probabilities, so the costliest can stay float.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf.export import bundle_writer

#: a candidate may lose at most this many accuracy points against its float source
MAX_LOSS_POINTS = 0.5


@dataclass
class Measured:
    accuracy: float
    source_accuracy: float
    agreement: float
    max_abs_diff: float
    n: int

    @property
    def loss_points(self) -> float:
        return round(100 * (self.source_accuracy - self.accuracy), 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 5),
            "source_accuracy": round(self.source_accuracy, 5),
            "loss_points": self.loss_points,
            "agreement_with_source": round(self.agreement, 5),
            "max_abs_prob_diff": round(self.max_abs_diff, 5),
            "n": self.n,
        }


class Scratch:
    """A scratch copy of a bundle that scores ONNX files as variants of it."""

    def __init__(self, root: Path, tmp: Path, id_map: str | None) -> None:
        self.root = tmp / "bundle"
        shutil.copytree(root, self.root)
        self.id_map = id_map
        self.count = 0

    def probabilities(self, onnx_path: Path, texts: Sequence[str]) -> np.ndarray:
        import edgeclf

        self.count += 1
        name = f"scratch-{self.count}"
        rel = f"model.{name}.onnx"
        shutil.copyfile(onnx_path, self.root / rel)
        manifest = bundle_writer.load(self.root)
        bundle_writer.add_variant(manifest, self.root, name, rel, id_map=self.id_map)
        bundle_writer.save(self.root, manifest)
        with edgeclf.load(self.root, variant=name, providers="cpu", temperature=1.0) as clf:
            return clf.predict_proba(list(texts))


@contextmanager
def scratch_bundle(root: Path, id_map: str | None):
    with tempfile.TemporaryDirectory(prefix="edgeclf-quantize-") as tmp:
        yield Scratch(root, Path(tmp), id_map)


def measure(source: np.ndarray, candidate: np.ndarray, labels: Sequence[int]) -> Measured:
    y = np.asarray(labels)
    return Measured(
        accuracy=float((candidate.argmax(1) == y).mean()),
        source_accuracy=float((source.argmax(1) == y).mean()),
        agreement=float((candidate.argmax(1) == source.argmax(1)).mean()),
        max_abs_diff=float(np.abs(candidate - source).max()) if len(y) else 0.0,
        n=len(y),
    )


def layer_costs(
    scratch: Scratch,
    build: Callable[[Path, list[str]], Any],
    layers: Sequence[str],
    source: np.ndarray,
    texts: Sequence[str],
    tmp: Path,
) -> list[tuple[str, float, float]]:
    """(layer, mean |probability change|, agreement) with only that layer quantized, costliest first."""
    out = []
    for layer in layers:
        path = tmp / "one-layer.onnx"
        build(path, [other for other in layers if other != layer])
        p = scratch.probabilities(path, texts)
        out.append((layer, float(np.abs(p - source).mean()), float((p.argmax(1) == source.argmax(1)).mean())))
    return sorted(out, key=lambda r: -r[1])
