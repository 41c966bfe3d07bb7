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
apart at all. The first route should be the shipped one.

A fair choice also needs validation reviews that the recovery's *teacher*
never read. ``--teacher-read CHECKPOINT`` names them: the teacher is itself
a pruned checkpoint whose recovery read the full training set, and
``texts_read`` replays that recovery (its ``pruning.json``; batch 32 and
seed 0 where it does not record them, ``edgeclf prune``'s defaults) to find
the validation reviews it never drew. Every route is scored on those too,
and they decide. ``--teacher-parent CHECKPOINT`` (the model the teacher was
cut from) checks the replay against the run itself: the teacher should
score well above its parent on the reviews its recovery read (it learnt
their labels) and not on the others. Writes benchmarks/results/recovery_routes.json and the
table docs/pruning.md includes (recovery_routes.md).
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


def teacher_never_read(checkpoint: Path, x: list[str], labels: list[int], val: list[int]) -> np.ndarray:
    """Which of the validation reviews ``val`` the checkpoint's own pruning recovery never read
    (it read the training reviews ``x``, the recipe in docs/albert.md)."""
    from edgeclf.export.albert import reference_tokenizer
    from edgeclf.quantize.recovery import texts_read

    rec = json.loads((checkpoint / "pruning.json").read_text(encoding="utf-8"))["recovery"]
    max_length = bundle_writer.load(DEFAULT)["max_length"]
    recorded = {k: rec[k] for k in ("batch_size", "seed") if k in rec}  # else texts_read's: prune's defaults
    read = texts_read(reference_tokenizer(checkpoint), x, labels, max_length, steps=rec["steps"], **recorded)
    return np.asarray([i not in read for i in val])


def replay_check(
    teacher: Path, parent: Path, x: list[str], labels: list[int], val: list[int], clean: np.ndarray
) -> dict[str, float]:
    """Accuracy of the teacher and its parent (PyTorch, truncated to the window) on the validation
    reviews the replay says the teacher's recovery read, and on those it never read."""
    from edgeclf.export.albert import reference_tokenizer
    from edgeclf.quantize.prune import _load
    from edgeclf.quantize.recovery import accuracy

    tok, max_length = reference_tokenizer(teacher), bundle_writer.load(DEFAULT)["max_length"]
    parts = {"read": np.asarray(val)[~clean], "never_read": np.asarray(val)[clean]}
    out = {}
    for name, ckpt in (("teacher", teacher), ("parent", parent)):
        model = _load(ckpt)
        for part, idx in parts.items():
            seqs = [tok.encode(x[i], truncation=True, max_length=max_length) for i in idx]
            out[f"{name}_{part}"] = round(accuracy(model, (seqs, [labels[i] for i in idx])), 4)
    return out


def route(
    label: str, spec: str, texts: list[str], y: np.ndarray, work: Path, clean: np.ndarray | None
) -> tuple[dict[str, Any], np.ndarray]:
    """One candidate, alone and with the default's head grafted on (in a scratch copy): its row, and
    which texts it labels right alone. ``clean``: the reviews the teacher never read."""
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
    if clean is not None:
        row["clean_alone"] = round(float(alone[clean].mean()), 4)
        row["clean_with_head"] = round(float(with_head[clean].mean()), 4)
    print(row, flush=True)
    return row, alone


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--route", action="append", metavar="LABEL=BUNDLE:VARIANT")
    p.add_argument(
        "--teacher-read",
        type=Path,
        metavar="CHECKPOINT",
        help="also score on the validation reviews this pruned checkpoint's recovery never read",
    )
    p.add_argument(
        "--teacher-parent",
        type=Path,
        metavar="CHECKPOINT",
        help="with --teacher-read: the checkpoint the teacher was cut from, to check the replay",
    )
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
    clean = None if a.teacher_read is None else teacher_never_read(a.teacher_read, x, labels, val)
    with tempfile.TemporaryDirectory() as tmp:
        scored = [route(*r.split("=", 1), texts, y, Path(tmp), clean) for r in a.route]
    first = scored[0][1]
    rows = [scored[0][0]]
    for row, alone in scored[1:]:
        row["vs_first_route"] = paired(alone, first)
        if clean is not None:
            row["clean_vs_first_route"] = paired(alone[clean], first[clean])
        rows.append(row)
    result = {"machine": machine(), "validation_reviews": len(y), "routes": rows}
    if clean is not None:
        result["clean"] = {
            "teacher": str(a.teacher_read.resolve().relative_to(ROOT)),
            "reviews": int(clean.sum()),
        }
        if a.teacher_parent is not None:
            result["clean"]["parent"] = str(a.teacher_parent.resolve().relative_to(ROOT))
            result["clean"]["replay_check"] = replay_check(
                a.teacher_read, a.teacher_parent, x, labels, val, clean
            )
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

    clean = result.get("clean")
    versus = "clean_vs_first_route" if clean else "vs_first_route"

    def vs(r: dict[str, Any]) -> str:
        if versus not in r:
            return "-"
        v = r[versus]
        return f"{v['right_only_this']} / {v['right_only_first']}, p = {v['p']}"

    head = ["route", "recovery", f"validation accuracy ({n} reviews)", "with the n-gram head"]
    rows = [[r["route"], recovered(r["recovery"]), f"{r['validation_alone']:.4f}",
             f"{r['validation_with_head']:.4f}"] for r in result["routes"]]  # fmt: skip
    if clean:
        head += [f"{clean['reviews']:,} the teacher never read", "with the n-gram head"]
        for row, r in zip(rows, result["routes"], strict=True):
            row += [f"{r['clean_alone']:.4f}", f"{r['clean_with_head']:.4f}"]
    head.append(f"right only here / only in the first row{' (never read)' if clean else ''}")
    for row, r in zip(rows, result["routes"], strict=True):
        row.append(vs(r))
    cpu = result["machine"].get("cpu", "?")
    return (
        markdown_table(head, rows)
        + f"\n\n({cpu}, onnxruntime {result['machine'].get('onnxruntime', '?')}; long reviews in windows;"
        " `benchmarks/results/recovery_routes.json`.)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
