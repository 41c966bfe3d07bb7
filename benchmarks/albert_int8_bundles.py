"""Rebuild the embedded ALBERT bundles' int8 variants as row-wise (batch-invariant) int8.

    python benchmarks/albert_int8_bundles.py [--scratch DIR]

For albert-imdb and albert-zh-rumor: exports the fp32 model from
checkpoints/ (checked byte for byte against the fp32 digest the manifest
recorded when that variant was dropped), writes the recipe's validation texts
(the split model_table.py fits temperatures on: 2,500 IMDB training reviews,
600 Weibo/CED training posts; never test texts) and runs ``edgeclf quantize``:

- ``int8``: row-wise from the fp32 export, the default and CPU variant; the
  dynamic per-tensor file it replaces stays as ``int8-dynamic``;
- ``pruned-int8`` (albert-imdb) and ``vocab-int8`` (albert-zh-rumor): their
  float checkpoints are not kept, so their dynamic int8 weights are
  dequantized (exactly) and their activations re-quantized row-wise.

Each variant is written only if it passes the accuracy gate (0.5 points of
its float source on the validation texts). A bundle whose ``int8`` is row-wise
already is left alone. Needs the [export] extra and ../shared/data.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from common import ROOT, fp32_export

from edgeclf.export import hub_offline, teacher
from edgeclf.export.data import load_imdb, shared_data_dir
from edgeclf.export.zh_rumor import load_split
from edgeclf.quantize.tool import main as quantize


def validation(name: str, data: Path) -> tuple[list[str], list[int]]:
    """The recipe's validation texts (benchmarks/model_table.py fits temperatures on the same)."""
    if name == "albert-imdb":
        x, y = load_imdb("train", data / "imdb")
        _, idx = teacher.split_indices(len(x), 2500, 42)
    else:
        x, y = load_split(data / "zh-rumor")["train"]
        _, idx = teacher.split_indices(len(x), 600, 42)
    return [x[i] for i in idx], [int(y[i]) for i in idx]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scratch", type=Path, default=ROOT / "scratch" / "albert-int8")
    args = ap.parse_args()
    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs ../shared/data")
    hub_offline()
    args.scratch.mkdir(parents=True, exist_ok=True)
    for name, pruned in (("albert-imdb", "pruned-int8"), ("albert-zh-rumor", "vocab-int8")):
        bundle = ROOT / "runtime" / "models" / name
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        if manifest["variants"]["int8"]["description"].startswith("rowwise"):
            print(f"{name}: int8 is row-wise already")
            continue
        val = args.scratch / f"{name}.validation.csv"
        with open(val, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            w.writerows(zip(*validation(name, data), strict=True))
        fp32 = fp32_export(ROOT / "checkpoints" / name, args.scratch / f"{name}.fp32.onnx", manifest)
        gate = ["--method", "rowwise", "--eval-data", str(val)]
        steps = [
            ["--source-model", str(fp32), "--keep-previous-as", "int8-dynamic", "--default"],
            ["--source", pruned, "--name", pruned, "--replace"],
        ]
        for step in steps:
            print(f"edgeclf quantize {bundle.relative_to(ROOT)} {' '.join(gate + step)}", flush=True)
            if quantize([str(bundle), *gate, *step]) != 0:
                raise SystemExit(f"{name}: the gate refused a variant (see above)")


if __name__ == "__main__":
    main()
