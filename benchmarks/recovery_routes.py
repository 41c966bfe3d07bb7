"""Which recovery of a pruned cut to ship: candidates scored on the validation reviews only.

    python benchmarks/recovery_routes.py \\
        --route "600 labelled steps (shipped)=runtime/models/albert-imdb:pruned-int8" \\
        --route "1,000 steps + 25,000 unlabeled reviews=/tmp/candidate/albert-imdb:pruned-int8"

Each route is a bundle variant (an int8 file from ``edgeclf prune`` + ``edgeclf
quantize``) cut to the same shape and recovered differently. Every one is
scored on the recipe's 2,500 validation reviews (``teacher.split_indices(25000,
2500, 42)``: never in any recovery's training texts), long ones in windows as
the bundle reads them, alone and with the embedded default's n-gram head and
blend grafted on (as ``ngram-pruned-int8`` ships), so the choice is made
without the test set. The recovery settings come from each bundle's
manifest; each route's labels are compared with the first route's on the same
reviews (McNemar), which says whether the validation reviews can tell them
apart at all. The first route should be the shipped one. A fair choice also
needs validation reviews that the recovery's *teacher* never read; for
students of checkpoints/albert-imdb they are not (docs/pruning.md). Writes
benchmarks/results/recovery_routes.json and the table docs/pruning.md
includes (recovery_routes.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, markdown_table, save

import edgeclf
from edgeclf.export import bundle_writer, teacher
from edgeclf.export import ngram_fuse as nf
from edgeclf.export.data import load_imdb, shared_data_dir

DEFAULT = ROOT / "runtime" / "models" / "albert-imdb"
RESULTS = ROOT / "benchmarks" / "results"


def right(bundle: Path, variant: str, texts: list[str], y: np.ndarray) -> np.ndarray:
    """Which texts the variant labels right."""
    with edgeclf.load(bundle, variant=variant, providers="cpu", temperature=1.0) as clf:
        return clf.predict_proba(texts).argmax(1) == y


def paired(mine: np.ndarray, first: np.ndarray) -> dict[str, Any]:
    """McNemar's test against the first route on the same texts (normal approximation, two-sided):
    how sure the validation texts are that the two differ at all."""
    only_mine, only_first = int((mine & ~first).sum()), int((~mine & first).sum())
    z = (only_mine - only_first) / math.sqrt(max(1, only_mine + only_first))
    return {
        "right_only_this": only_mine,
        "right_only_first": only_first,
        "p": round(math.erfc(abs(z) / 2**0.5), 3),
    }


def route(
    label: str, spec: str, texts: list[str], y: np.ndarray, work: Path
) -> tuple[dict[str, Any], np.ndarray]:
    """One candidate, alone and with the default's head grafted on (in a scratch copy): its row, and
    which texts it labels right alone."""
    path, _, variant = spec.rpartition(":")
    src = Path(path)
    man = bundle_writer.load(src)
    rel = man["variants"][variant]["file"]["path"]
    head, blend = nf.read_head(DEFAULT / "model.ngram-int8.onnx")
    copy = work / hashlib.sha256(label.encode()).hexdigest()[:12]
    shutil.copytree(src, copy)
    nf.graft(copy / rel, copy / "model.route-ngram.onnx", head, blend)
    bundle_writer.add_variant(man, copy, "route-ngram", "model.route-ngram.onnx")
    bundle_writer.save(copy, man)
    pruning = man.get("extra", {}).get("pruning") or {}
    cut = max((k for k in pruning if variant == k or variant.startswith(f"{k}-")), key=len, default=None)
    recovery = pruning[cut].get("recovery") if cut else None
    alone, with_head = right(src, variant, texts, y), right(copy, "route-ngram", texts, y)
    row = {
        "route": label,
        "variant": variant,
        "sha256": man["variants"][variant]["file"]["sha256"],
        "recovery": recovery,
        "validation_alone": round(float(alone.mean()), 4),
        "validation_with_head": round(float(with_head.mean()), 4),
    }
    print(row, flush=True)
    return row, alone


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--route", action="append", metavar="LABEL=BUNDLE:VARIANT")
    p.add_argument("--render", action="store_true", help="rewrite the table from the last run's JSON")
    a = p.parse_args(argv)
    if a.render:
        return write_table(json.loads((RESULTS / "recovery_routes.json").read_text(encoding="utf-8")))
    if not a.route:
        p.error("name at least one --route")
    data = shared_data_dir()
    if data is None:
        print("needs ../shared/data", file=sys.stderr)
        return 2
    x, labels = load_imdb("train", data / "imdb")
    _, val = teacher.split_indices(len(x), 2500, 42)
    texts, y = [x[i] for i in val], np.asarray([labels[i] for i in val])
    with tempfile.TemporaryDirectory() as tmp:
        scored = [route(*r.split("=", 1), texts, y, Path(tmp)) for r in a.route]
    rows = [{**row, "vs_first_route": paired(alone, scored[0][1])} for row, alone in scored[1:]]
    rows.insert(0, scored[0][0])
    result = {"machine": machine(), "validation_reviews": len(y), "routes": rows}
    save("recovery_routes", result)
    return write_table(result)


def write_table(result: dict[str, Any]) -> int:
    (RESULTS / "recovery_routes.md").write_text(table(result) + "\n", encoding="utf-8")
    return 0


def table(result: dict[str, Any]) -> str:
    def recovered(r: dict[str, Any] | None) -> str:
        if not r:
            return "-"
        extra = f" + {r['unlabeled_texts']:,} unlabeled" if r.get("unlabeled_texts") else ""
        return f"{r['steps']:,} steps{extra}, {r['seconds']:,.0f} s"

    n = f"{result['validation_reviews']:,}"

    def vs(r: dict[str, Any]) -> str:
        if "vs_first_route" not in r:
            return "-"
        v = r["vs_first_route"]
        return f"{v['right_only_this']} / {v['right_only_first']}, p = {v['p']}"

    rows = [[r["route"], recovered(r["recovery"]), f"{r['validation_alone']:.4f}", vs(r),
             f"{r['validation_with_head']:.4f}"] for r in result["routes"]]  # fmt: skip
    cpu = result["machine"].get("cpu", "?")
    return (
        markdown_table(
            [
                "route",
                "recovery",
                f"validation accuracy ({n} reviews)",
                "right only here / only in the first row",
                "with the n-gram head",
            ],
            rows,
        )
        + f"\n\n({cpu}, onnxruntime {result['machine'].get('onnxruntime', '?')}; long reviews in windows;"
        " `benchmarks/results/recovery_routes.json`.)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
