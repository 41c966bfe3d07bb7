"""``edgeclf quantize BUNDLE``: add an int8 variant to a bundle, behind an accuracy gate.

Methods (docs/quantization.md compares them):

- ``rowwise`` (transformers' default): each token row's activations get their
  own scale, so a text's score never depends on the texts batched with it;
- ``static``: activation ranges calibrated once on ``--calibration-data``
  (training texts, never test texts), QDQ format, also batch-independent;
- ``dynamic``: onnxruntime's dynamic quantization, one activation scale per
  batch (a text's score moves with its neighbours); Keras bundles quantize
  only their embedding this way, which is batch-independent.

With ``--eval-data`` (labelled validation texts) the variant is written only
when its accuracy there is within ``--max-loss`` points of the source's. Otherwise
the command lists the layers that cost the most; ``--keep-float LAYER``
leaves some in float and ``--mixed-precision`` does so, costliest first, until
the gate passes. A bundle without a float variant (the embedded ones) takes
``--source-model`` (an fp32 ONNX file from ``edgeclf export albert``), or a
dynamic-int8 ``--source`` whose weights are dequantized first.

    edgeclf quantize my-bundle --method rowwise --eval-data valid.csv
    edgeclf quantize my-bundle --method static --calibration-data train.csv --eval-data valid.csv
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .gate import MAX_LOSS_POINTS

#: how a variant's description names each method
METHODS = {
    "rowwise": "row-wise int8 (one activation scale per token row: batch-invariant)",
    "static": "static int8 (QDQ, calibrated activation ranges: batch-invariant)",
    "dynamic": "dynamic int8 (one activation scale per batch)",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgeclf quantize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--method", choices=["rowwise", "static", "dynamic"], default=None)
    p.add_argument("--source", default="fp32", help="variant to quantize (default: fp32)")
    p.add_argument("--source-model", default=None, help="float ONNX file of the bundle's model instead")
    p.add_argument("--name", default="int8", help="name of the new variant (default: int8)")
    p.add_argument("--default", action="store_true", help="make it the default (and CPU) variant")
    p.add_argument("--keep-previous-as", default=None, metavar="NAME", help="rename a variant of that name")
    p.add_argument("--replace", action="store_true", help="overwrite a variant of that name")
    p.add_argument("--calibration-data", help="labelled CSV of TRAINING texts (static: activation ranges)")
    p.add_argument("--calibration-limit", type=int, default=256)
    p.add_argument("--eval-data", help="labelled CSV of validation texts for the accuracy gate")
    p.add_argument("--eval-limit", type=int, default=None)
    p.add_argument("--max-loss", type=float, default=MAX_LOSS_POINTS, help="accuracy points (default 0.5)")
    p.add_argument("--keep-float", action="append", default=[], metavar="LAYER", help="leave in float")
    p.add_argument("--mixed-precision", action="store_true", help="keep the costliest layers float")
    p.add_argument("--ops", choices=["embedding", "all"], default=None, help="dynamic: what to quantize")
    return p


def _builder(args: argparse.Namespace, src: Path, root: Path, manifest: dict[str, Any]) -> Callable:
    """``build(dst, keep_float) -> report`` for the chosen method."""
    from .int8 import quantize_embedding_only, quantize_weights
    from .rowwise import quantize_rowwise
    from .static import calibration_feeds, quantize_static_qdq

    if args.method == "rowwise":
        return lambda dst, keep: quantize_rowwise(src, dst, keep_float=keep)
    if args.method == "dynamic" and args.ops == "embedding":

        def embedding_only(dst: Path, keep: Sequence[str]) -> dict[str, Any]:
            quantize_embedding_only(src, dst)
            return {"quantized": ["embeddings"], "float": []}

        return embedding_only
    if args.method == "dynamic":
        return lambda dst, keep: quantize_weights(src, dst, keep_float=keep)
    if not args.calibration_data:
        raise SystemExit("edgeclf quantize: --method static needs --calibration-data (training texts)")
    from edgeclf.export.data import read_labelled

    texts, _ = read_labelled(args.calibration_data)
    id_map = (
        None if args.source_model else (manifest["variants"][args.source].get("id_map") or {}).get("path")
    )
    feeds = calibration_feeds(root, texts, id_map, args.calibration_limit)

    def build(dst: Path, keep: Sequence[str]) -> dict[str, Any]:
        tmp = Path(str(dst) + ".qdq")
        report = quantize_static_qdq(src, tmp, feeds, keep_float=keep)
        quantize_embedding_only(tmp, dst)  # the embedding table: per tensor, after the lookup
        tmp.unlink()
        return report

    return build


def _source(args: argparse.Namespace, root: Path, manifest: dict[str, Any], tmp: Path) -> Path:
    """The float model to quantize (a dynamic-int8 source is dequantized first)."""
    import onnx

    from .rowwise import dequantize_dynamic

    if args.source_model:
        return Path(args.source_model)
    if args.source not in manifest["variants"]:
        raise SystemExit(
            f"edgeclf quantize: {root} has no {args.source!r} variant (it has "
            f"{', '.join(manifest['variants'])}); export the float model with `edgeclf export albert "
            f"CHECKPOINT --out DIR` and pass --source-model DIR/model.onnx"
        )
    src = root / manifest["variants"][args.source]["file"]["path"]
    if any(n.op_type == "MatMulInteger" for n in onnx.load(str(src)).graph.node):
        n = dequantize_dynamic(src, tmp / "source-dequantized.onnx")
        print(f"{args.source} is dynamic int8: dequantized its {n} weight products to float first")
        return tmp / "source-dequantized.onnx"
    return src


def _gate(args, build, src: Path, root: Path, id_map: str | None, tmp: Path) -> tuple[dict, dict] | None:
    """Build, measure and (with --mixed-precision) retry; None when the gate fails."""
    from edgeclf.export.data import read_labelled

    from .gate import layer_costs, measure, scratch_bundle

    texts, labels = read_labelled(args.eval_data)
    if args.eval_limit and len(texts) > args.eval_limit:  # spread: labelled files are often sorted by label
        step = len(texts) // args.eval_limit
        texts, labels = texts[::step][: args.eval_limit], labels[::step][: args.eval_limit]
    keep = list(args.keep_float)
    with scratch_bundle(root, id_map) as scratch:
        source = scratch.probabilities(src, texts)
        costs: list[tuple[str, float, float]] | None = None
        while True:
            report = build(tmp / "candidate.onnx", keep)
            m = measure(source, scratch.probabilities(tmp / "candidate.onnx", texts), labels)
            print(
                f"{args.method} int8 ({len(keep)} layer(s) float): accuracy {m.accuracy:.4f} vs "
                f"{m.source_accuracy:.4f} float on {m.n:,} texts ({m.loss_points:+.2f} points lost, "
                f"allowed {args.max_loss}), agreement {m.agreement:.4f}"
            )
            if m.loss_points <= args.max_loss:
                return report, m.as_dict()
            if costs is None:
                layers = [x for x in report["quantized"] if x not in keep]
                costs = layer_costs(scratch, build, layers, source, texts[:500], tmp)
                print("layers by cost (only that layer int8; mean |probability change|, agreement):")
                for layer, cost, agree in costs:
                    print(f"  {layer:40s} {cost:.5f}  {agree:.4f}")
            remaining = [c[0] for c in costs if c[0] not in keep]
            if not args.mixed_precision or not remaining:
                print(
                    "not written: the gate failed; leave layers float with --keep-float LAYER "
                    "or let --mixed-precision choose them"
                )
                return None
            keep.append(remaining[0])
            print(f"keeping {remaining[0]} in float")


def _write(args, root: Path, manifest: dict[str, Any], candidate: Path, metrics, report, id_map) -> Path:
    from edgeclf.export import bundle_writer

    variants = manifest["variants"]
    previous = variants.get(args.name)
    if previous is not None:
        if args.keep_previous_as:
            rel = f"model.{args.keep_previous_as}.onnx"
            shutil.move(root / previous["file"]["path"], root / rel)
            variants[args.keep_previous_as] = {**previous, "file": bundle_writer.ref(root, rel)}
            for prov, name in manifest.get("provider_variants", {}).items():
                if name == args.name:
                    manifest["provider_variants"][prov] = args.keep_previous_as
            if manifest["default_variant"] == args.name:
                manifest["default_variant"] = args.keep_previous_as
        elif not args.replace:
            raise SystemExit(
                f"edgeclf quantize: {args.name!r} exists; pass --keep-previous-as NAME or --replace"
            )
    rel = f"model.{args.name}.onnx"
    shutil.copyfile(candidate, root / rel)
    floats = report.get("float") or []
    what = METHODS[args.method]
    if previous is not None and "dynamic int8" in previous.get("description", ""):
        description = previous["description"].replace("dynamic int8", what)  # keeps what it says of the model
    else:
        source = Path(args.source_model).name if args.source_model else args.source
        description = f"{what} of {source}: every weight MatMul and the embeddings"
    bundle_writer.add_variant(
        manifest,
        root,
        args.name,
        rel,
        precision="int8",
        default=args.default,
        id_map=id_map,
        metrics={"quantization_gate": metrics} if metrics else {},
        description=description + (f"; float: {', '.join(floats)}" if floats else ""),
    )
    if previous is not None and "temperature" in previous:
        # the same model re-quantized: its fitted calibration carries over until it is refitted
        manifest["variants"][args.name]["temperature"] = previous["temperature"]
    if args.default:
        manifest.setdefault("provider_variants", {})["cpu"] = args.name
    bundle_writer.save(root, manifest)
    return root / rel


def main(argv: Sequence[str] | None = None) -> int:
    from edgeclf.bundle import resolve
    from edgeclf.export import bundle_writer, require

    require("onnx", "int8 quantization")
    args = _parser().parse_args(argv)
    root = Path(resolve(args.bundle))
    manifest = bundle_writer.load(root)
    keras = manifest["tokenizer"]["kind"] == "keras-words"
    args.method = args.method or ("dynamic" if keras else "rowwise")
    if args.method == "dynamic" and args.ops is None:
        args.ops = "embedding" if keras else "all"
    src_variant = manifest["variants"].get(args.source, {})
    id_map = None if args.source_model else (src_variant.get("id_map") or {}).get("path")
    with tempfile.TemporaryDirectory(prefix="edgeclf-quantize-") as tmp_dir:
        tmp = Path(tmp_dir)
        src = _source(args, root, manifest, tmp)
        build = _builder(args, src, root, manifest)
        if not args.eval_data:
            print("not gated: pass --eval-data (labelled validation texts) to measure it before writing")
            report, metrics = build(tmp / "candidate.onnx", list(args.keep_float)), None
        else:
            gated = _gate(args, build, src, root, id_map, tmp)
            if gated is None:
                return 1
            report, metrics = gated
        path = _write(args, root, manifest, tmp / "candidate.onnx", metrics, report, id_map)
    print(f"wrote {path} ({path.stat().st_size:,} bytes) as variant {args.name!r}")
    sys.stdout.flush()
    return 0
