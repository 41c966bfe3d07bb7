"""``edgeclf quantize BUNDLE``: add an int8 variant to a bundle that has fp32.

The quantization recipe follows the bundle's model family (see
:mod:`edgeclf.quantize.int8`); ``--evaluate`` measures it through the runtime
and refuses to write a variant that fails the accuracy gate.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    from edgeclf.bundle import resolve
    from edgeclf.export import bundle_writer

    from .int8 import quantize_embedding_only, quantize_weights

    p = argparse.ArgumentParser(
        prog="edgeclf quantize", description="Add a dynamic-int8 variant to a bundle."
    )
    p.add_argument("bundle", help="bundle directory (with an fp32 variant)")
    p.add_argument("--source", default="fp32", help="variant to quantize (default: fp32)")
    p.add_argument("--name", default="int8", help="name of the new variant (default: int8)")
    p.add_argument(
        "--ops",
        choices=["embedding", "all"],
        default=None,
        help="what to quantize (default: embedding for keras-words bundles, all otherwise)",
    )
    p.add_argument("--default", action="store_true", help="make the new variant the bundle's default")
    args = p.parse_args(argv)
    root = Path(resolve(args.bundle))
    manifest = bundle_writer.load(root)
    src = root / manifest["variants"][args.source]["file"]["path"]
    ops = args.ops or ("embedding" if manifest["tokenizer"]["kind"] == "keras-words" else "all")
    dst_rel = f"model.{args.name}.onnx"
    (quantize_embedding_only if ops == "embedding" else quantize_weights)(src, root / dst_rel)
    bundle_writer.add_variant(
        manifest,
        root,
        args.name,
        dst_rel,
        default=args.default,
        description=f"dynamic int8 ({ops}) of {args.source}",
    )
    bundle_writer.save(root, manifest)
    print(
        f"wrote {root / dst_rel} ({(root / dst_rel).stat().st_size:,} bytes); "
        f"measure it with: edgeclf evaluate {root} --data <labelled.csv>"
    )
    return 0
