"""Writes the manifests that ``edgeclf.bundle`` reads, and the metrics measured on them.

Sizes and digests are always computed from the files on disk, never passed
in, so a manifest cannot describe a file other than the one beside it; and
every accuracy stamped by :func:`record_metrics` carries the data set, the
command that repeats it and the machine, so a number says where it came from.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgeclf.bundle import FORMAT, FORMAT_VERSION, MANIFEST, file_ref, parse_manifest
from edgeclf.output import write_atomic


def fresh_dir(out: str | os.PathLike[str]) -> Path:
    """The bundle directory, emptied: an export never mixes its files with an older bundle's."""
    root = Path(out)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return root


def ref(root: Path, relpath: str) -> dict[str, Any]:
    return asdict(file_ref(root, relpath))


def new_manifest(
    root: Path,
    *,
    name: str,
    task: str,
    labels: list[str],
    tokenizer_kind: str,
    tokenizer_files: dict[str, str],
    tokenizer_config: dict[str, Any],
    max_length: int,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    output_kind: str,
    padding: str,
    description: str = "",
    extra: dict[str, Any] | None = None,
    model_card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A manifest without variants (``add_variant`` adds them).

    ``model_card`` (export/model_card.py): the training data and vocabulary
    sources with their terms; every bundle the project writes carries one.
    """
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "task": task,
        "description": description,
        "labels": labels,
        "tokenizer": {
            "kind": tokenizer_kind,
            "files": {k: ref(root, v) for k, v in tokenizer_files.items()},
            "config": tokenizer_config,
        },
        "max_length": max_length,
        "padding": padding,
        "inputs": inputs,
        "outputs": outputs,
        "output_kind": output_kind,
        "variants": {},
        "default_variant": "",
        "model_card": model_card or {},
        "extra": extra or {},
    }


def add_variant(
    manifest: dict[str, Any],
    root: Path,
    name: str,
    relpath: str,
    *,
    metrics: dict[str, Any] | None = None,
    description: str = "",
    default: bool = False,
    id_map: str | None = None,
    precision: str = "",
) -> None:
    manifest["variants"][name] = {
        "file": ref(root, relpath),
        "description": description,
        "metrics": metrics or {},
    }
    if precision:  # "fp32" / "fp16" / "int8": what ``providers="auto"`` reasons about
        manifest["variants"][name]["precision"] = precision
    if id_map is not None:  # vocabulary-pruned variant: tokenizer id -> embedding row
        manifest["variants"][name]["id_map"] = ref(root, id_map)
    if default or not manifest["default_variant"]:
        manifest["default_variant"] = name


def load(root: Path) -> dict[str, Any]:
    return json.loads((root / MANIFEST).read_text(encoding="utf-8"))


def save(root: Path, manifest: dict[str, Any]) -> Path:
    """Validate with the runtime's own parser, then write atomically."""
    parse_manifest(manifest, root)
    path = root / MANIFEST
    write_atomic(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path


def machine_description() -> str:
    """The machine a metric was measured on, in one line."""
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def record_metrics(
    root: Path,
    manifest: dict[str, Any],
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    dataset: str,
    measured_by: str | Callable[[str], str],
    variants: Sequence[str] | None = None,
    record: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate the bundle at ``root`` on labelled texts, stamp the metrics into ``manifest`` and save it.

    ``variants`` are evaluated (default: all of the bundle's; agreement is
    against ``fp32`` where it is among them); ``record`` are stamped
    (default: every evaluated one). Each stamped variant's metrics gain
    ``dataset``, ``measured_by`` (a command, or a function of the variant
    name giving one) and ``machine``. Returns every evaluated variant's metrics.
    """
    from edgeclf.quantize.evaluate import evaluate_variants

    results = evaluate_variants(root, texts, labels, variants=variants)
    for name in record or list(results):
        metrics = results[name]
        command = measured_by(name) if callable(measured_by) else measured_by
        metrics.update(dataset=dataset, measured_by=command, machine=machine_description())
        manifest["variants"][name]["metrics"] = metrics
        if log is not None:
            log(f"{name}: {metrics}")
    save(root, manifest)
    return results


def drop_variants(root: Path, names: list[str]) -> dict[str, Any]:
    """Remove variants' files from a bundle, keeping what they measured.

    Embedded bundles ship the int8 variants only (wheel size), but the fp32
    reference numbers stay in ``extra.measured_not_shipped`` so a reader can
    see what quantization cost; re-exporting recreates the files.
    """
    manifest = load(root)
    for name in names:
        variant = manifest["variants"].pop(name)
        if manifest["default_variant"] == name:
            raise ValueError(f"cannot drop the default variant {name!r}")
        (root / variant["file"]["path"]).unlink(missing_ok=True)
        prefs = manifest.get("provider_variants", {})
        for prov in [p for p, v in prefs.items() if v == name]:
            del prefs[prov]
        manifest["extra"].setdefault("measured_not_shipped", {})[name] = {
            "description": variant.get("description", ""),
            "size": variant["file"]["size"],
            "sha256": variant["file"]["sha256"],
            "metrics": variant.get("metrics", {}),
        }
    save(root, manifest)
    return manifest
