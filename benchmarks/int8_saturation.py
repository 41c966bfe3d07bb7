"""Why an x86 host's int8 ALBERT answers differ from a Raspberry Pi's: int16 saturation.

The ALBERT bundles' int8 variants are dynamically quantized: MatMulInteger
multiplies uint8 activations by int8 weights (U8S8). On x86 with AVX2 but
no VNNI, onnxruntime's U8S8 kernel adds pairs of u8 x s8 products with
vpmaddubsw, which saturates at int16; the ARM64 kernels (SDOT/UDOT on a Pi
5, NEON widening multiplies on a Pi 4) accumulate exactly. The U8U8 kernels
widen to int16 before multiplying, so they are exact on x86 too.

This script rewrites a bundle's int8 weights as uint8 with zero point 128
(the same integers: (w + 128) - 128 = w), loads both bundles with
``edgeclf.load`` and classifies the same texts on this machine. If the two
differ, this machine's U8S8 kernel is not exact. With ``--pi-output`` (the
``edgeclf predict --format jsonl --probabilities`` output of
deploy/raspberry-pi/emulated-test.sh for the same texts, kept with
EDGECLF_PI_KEEP) it also says which of the two the emulated Pi agrees with.

    python benchmarks/int8_saturation.py --model albert-imdb --variant int8 \\
        --data /tmp/pi-keep/in/en-albert.csv --pi-output /tmp/pi-keep/pi-out-trixie-cortex-a76/albert-imdb.int8.jsonl

Needs the onnx package (the [export] extra). Writes benchmarks/results/int8_saturation.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from common import machine, save

import edgeclf
from edgeclf.bundle import embedded_root


def to_u8u8(src: Path, dst: Path) -> int:
    """Copy of an int8 ONNX model whose MatMulInteger weights are uint8 with zero point 128."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    users: dict[str, list] = {}
    for node in model.graph.node:
        for pos, name in enumerate(node.input):
            users.setdefault(name, []).append((node, pos))
    converted = 0
    for node in model.graph.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in inits:
            continue
        w = inits[node.input[1]]
        if w.data_type != onnx.TensorProto.INT8:
            continue
        if any(n.op_type != "MatMulInteger" or p != 1 for n, p in users[w.name]):
            raise SystemExit(f"{w.name} is used by other nodes too; not rewriting it")
        values = numpy_helper.to_array(w).astype(np.int16) + 128
        w.CopyFrom(numpy_helper.from_array(values.astype(np.uint8), w.name))
        converted += 1
    for node in model.graph.node:  # zero points: 0 (int8) -> 128 (uint8), one new initializer each
        if node.op_type == "MatMulInteger" and inits[node.input[1]].data_type == onnx.TensorProto.UINT8:
            zp_name = f"{node.input[1]}__zp_u8"
            if zp_name not in inits:
                old = (
                    numpy_helper.to_array(inits[node.input[3]])
                    if len(node.input) > 3 and node.input[3]
                    else 0
                )
                zp = (np.asarray(old, dtype=np.int16) + 128).astype(np.uint8)
                inits[zp_name] = numpy_helper.from_array(zp, zp_name)
                model.graph.initializer.append(inits[zp_name])
            while len(node.input) < 4:
                node.input.append("")
            node.input[3] = zp_name
    onnx.save(model, str(dst))
    return converted


def u8u8_bundle(model: str, variant: str, out: Path) -> tuple[Path, int]:
    src = embedded_root() / model if (embedded_root() / model).is_dir() else Path(model)
    bundle = out / "bundle"
    shutil.copytree(src, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    entry = manifest["variants"][variant]["file"]
    n = to_u8u8(src / entry["path"], bundle / entry["path"])
    data = (bundle / entry["path"]).read_bytes()
    entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return bundle, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="albert-imdb")
    ap.add_argument("--variant", default="int8")
    ap.add_argument("--data", required=True, help="CSV with id,text columns")
    ap.add_argument("--pi-output", help="the emulated Pi's jsonl for the same CSV")
    args = ap.parse_args()

    with open(args.data, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["text"].strip()]
    texts = [r["text"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        bundle, n = u8u8_bundle(args.model, args.variant, Path(tmp))
        u8s8 = edgeclf.load(args.model, variant=args.variant, providers="cpu").predict_proba(texts)
        u8u8 = edgeclf.load(bundle, variant=args.variant, providers="cpu").predict_proba(texts)
    result = {
        "model": args.model,
        "variant": args.variant,
        "texts": len(texts),
        "data": Path(args.data).name,  # the file's name: no path of the machine it ran on
        "matmulinteger_weights_rewritten": n,
        "max_abs_diff_u8s8_vs_u8u8": float(np.abs(u8s8 - u8u8).max()),
        "label_flips_u8s8_vs_u8u8": int((u8s8.argmax(1) != u8u8.argmax(1)).sum()),
        "machine": machine(),
    }
    if args.pi_output:
        pi = {}
        with open(args.pi_output, encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                if r["probabilities"]:
                    pi[r["id"]] = list(r["probabilities"].values())
        p = np.array([pi[r["id"]] for r in rows])
        result["pi_output"] = Path(args.pi_output).name
        result["max_abs_diff_pi_vs_u8s8"] = float(np.abs(p - u8s8).max())
        result["max_abs_diff_pi_vs_u8u8"] = float(np.abs(p - u8u8).max())
    path = save("int8_saturation", result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
