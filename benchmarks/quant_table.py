"""Int8 methods side by side: accuracy, agreement with fp32, batch invariance, latency, size.

    python benchmarks/quant_table.py --model albert-imdb [--write-manifests]
    python benchmarks/quant_table.py --model albert-zh-rumor [--write-manifests]
    python benchmarks/quant_table.py --model albert-base-v2      # random weights: no accuracy

One run per table (writes benchmarks/results/quant_<model>.json). Variants,
all through ``edgeclf.load`` on a scratch copy of the bundle:

- ``fp32``: the export of checkpoints/<model> (albert-base-v2: a randomly
  initialised model of that shape, as in bench_albert_base.py);
- ``int8-dynamic``: onnxruntime's dynamic int8 (one activation scale per batch);
- ``int8``: row-wise int8 (edgeclf.quantize.rowwise, one scale per token row);
- ``static``: static QDQ int8, activation ranges from 256 training texts
  (``--calibration-texts``);
- the bundle's pruned variant (albert-imdb ``pruned-int8``, albert-zh-rumor
  ``vocab-int8``), row-wise, where the bundle has one.

Accuracy on the full test set (25,000 IMDB reviews, the non-empty Weibo test
posts), label agreement with fp32; invariance: the largest probability change
of a text scored alone vs in the default batches vs shuffled into other
batches (600 test texts; 64 for albert-base-v2), and its label flips; latency of one
``session.run`` through the runtime at 128 tokens, batch 1 and 32, 1 and 2
threads, all variants interleaved in one run, medians and ratios to
int8-dynamic (the machine is shared: its load average is recorded). With
``--write-manifests`` the embedded bundle's int8 variants get the measured
accuracy, agreement and invariance.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("USE_TF", "0")

import numpy as np
from common import ROOT, fp32_export, machine, save

import edgeclf
from edgeclf.export import bundle_writer, hub_offline

PRUNED = {"albert-imdb": "pruned-int8", "albert-zh-rumor": "vocab-int8"}


def data(model: str) -> tuple[list[str], list[int], list[str], str]:
    """(test texts, labels, training texts for calibration, dataset description)."""
    if model == "albert-zh-rumor":
        from edgeclf.export.zh_rumor import load_split

        split = load_split()
        test = [(t, int(y)) for t, y in zip(*split["test"], strict=True) if t.strip()]
        return [t for t, _ in test], [y for _, y in test], list(split["train"][0]), "weibo_test"
    from edgeclf.export.data import load_imdb

    test, labels = load_imdb("test")
    train, _ = load_imdb("train")
    return test, [int(y) for y in labels], train, "IMDB test"


def scratch_bundle(model: str, work: Path, log, calibration: int = 256) -> Path:
    """A copy of the bundle with fp32, int8-dynamic, int8 (row-wise) and static variants."""
    from edgeclf.export.albert import export_albert
    from edgeclf.quantize.int8 import quantize_weights
    from edgeclf.quantize.rowwise import quantize_rowwise
    from edgeclf.quantize.static import calibration_feeds, quantize_static_qdq

    root = work / "bundle"
    if model == "albert-base-v2":
        from bench_albert_base import make_checkpoint

        ckpt = make_checkpoint(model, work / "checkpoint")
        export_albert(ckpt, root, name=model, max_length=256, fp16=False, int8=False, log=log)
        fp32 = root / "model.onnx"
    else:
        shutil.copytree(ROOT / "runtime" / "models" / model, root)
        fp32 = fp32_export(ROOT / "checkpoints" / model, root / "model.fp32.onnx", bundle_writer.load(root))
    manifest = bundle_writer.load(root)
    train = list(data(model if model != "albert-base-v2" else "albert-imdb")[2])
    random.Random(0).shuffle(train)
    files = {"fp32": fp32.name, "int8-dynamic": "model.int8-dynamic.onnx", "int8": "model.int8.onnx"}
    quantize_weights(fp32, root / files["int8-dynamic"])
    quantize_rowwise(fp32, root / files["int8"])
    quantize_static_qdq(fp32, work / "static.qdq.onnx", calibration_feeds(root, train, None, calibration))
    from edgeclf.quantize.int8 import quantize_embedding_only

    quantize_embedding_only(work / "static.qdq.onnx", root / "model.static.onnx")
    files["static"] = "model.static.onnx"
    for name, rel in files.items():
        if name not in manifest["variants"] or manifest["variants"][name]["file"]["path"] != rel:
            bundle_writer.add_variant(
                manifest, root, name, rel, precision="fp32" if name == "fp32" else "int8"
            )
        else:
            manifest["variants"][name]["file"] = bundle_writer.ref(root, rel)
    bundle_writer.save(root, manifest)
    return root


def invariance(root: Path, variant: str, texts: list[str]) -> dict[str, Any]:
    """Largest probability change and label flips: alone vs default batches vs shuffled batches."""
    clf = edgeclf.load(root, variant=variant, providers="cpu", temperature=1.0)
    default = clf.predict_proba(texts)
    order = list(range(len(texts)))
    random.Random(1).shuffle(order)
    clf.batch_size = 7  # other neighbours: batches of 7 from a shuffled file
    shuffled = np.empty_like(default)
    shuffled[order] = clf.predict_proba([texts[i] for i in order])
    clf.batch_size = 1
    alone = clf.predict_proba(texts)
    clf.close()
    diffs = [float(np.abs(p - alone).max()) for p in (default, shuffled)]
    flips = [int((p.argmax(1) != alone.argmax(1)).sum()) for p in (default, shuffled)]
    return {
        "texts": len(texts),
        "max_abs_diff_batched": diffs[0],
        "max_abs_diff_shuffled": diffs[1],
        "label_flips_batched": flips[0],
        "label_flips_shuffled": flips[1],
    }


def timed(calls: dict[str, Any], rounds: int, min_time: float = 0.3) -> dict[str, dict[str, float]]:
    """Median wall and CPU (this process) seconds per call, all candidates interleaved in each round.

    On a shared machine the CPU time of a one-thread call is the steadier of the two: other
    processes stretch the wall clock, not the work done."""
    reps = {}
    for name, fn in calls.items():
        fn()
        t0 = time.perf_counter()
        fn()
        reps[name] = max(1, int(min_time / max(time.perf_counter() - t0, 1e-6)))
    wall: dict[str, list[float]] = {n: [] for n in calls}
    cpu: dict[str, list[float]] = {n: [] for n in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(reps[name]):
                fn()
            wall[name].append((time.perf_counter() - w0) / reps[name])
            cpu[name].append((time.process_time() - c0) / reps[name])
    return {n: {"wall_s": float(np.median(wall[n])), "cpu_s": float(np.median(cpu[n]))} for n in calls}


def latency(root: Path, variants: list[str], text_ids: list[int], rounds: int) -> dict[str, Any]:
    """Milliseconds per session.run at 128 tokens, interleaved, and ratios to int8-dynamic."""
    out: dict[str, Any] = {"load_average_before": os.getloadavg()[0]}
    for threads in (1, 2):
        clfs = {v: edgeclf.load(root, variant=v, providers="cpu", threads=threads) for v in variants}
        for bs in (1, 32):
            seqs = [text_ids] * bs
            for c in clfs.values():
                c.batch_size, c.batch_tokens = bs, None
            res = timed({v: (lambda c=c, s=seqs: c.proba_from_ids(s)) for v, c in clfs.items()}, rounds)
            base = res["int8-dynamic"]
            out[f"b{bs}_t{threads}"] = {
                v: {
                    "ms": round(r["wall_s"] * 1e3, 3),
                    "x_dynamic": round(r["wall_s"] / base["wall_s"], 3),
                    "cpu_ms": round(r["cpu_s"] * 1e3, 3),
                    "cpu_x_dynamic": round(r["cpu_s"] / base["cpu_s"], 3),
                }
                for v, r in res.items()
            }
            print(f"batch {bs}, {threads} thread(s): {out[f'b{bs}_t{threads}']}", flush=True)
        for c in clfs.values():
            c.close()
    out["load_average_after"] = os.getloadavg()[0]
    return out


def accuracy(
    root: Path, variants: list[str], texts: list[str], labels: list[int], reference: str | None = "fp32"
) -> dict[str, Any]:
    """Accuracy (and, for the rumor task, the fake class's F1) and agreement with ``reference``."""
    y = np.asarray(labels)
    preds, out = {}, {}
    for v in variants:
        t0 = time.perf_counter()
        with edgeclf.load(root, variant=v, providers="cpu", temperature=1.0) as clf:
            preds[v] = clf.predict_proba(texts).argmax(1)
        seconds = round(time.perf_counter() - t0)
        out[v] = {"accuracy": round(float((preds[v] == y).mean()), 5), "seconds": seconds}
        if bundle_writer.load(root)["task"] == "fake-news":  # label 1 = fake
            tp = int(((preds[v] == 1) & (y == 1)).sum())
            out[v]["fake_f1"] = round(2 * tp / max(1, int((preds[v] == 1).sum()) + int((y == 1).sum())), 5)
        print(f"{v}: {out[v]}", flush=True)
    for v in variants if reference else []:
        out[v][f"agreement_with_{reference}"] = round(float((preds[v] == preds[reference]).mean()), 5)
    return out


def write_manifests(model: str, result: dict[str, Any], dataset: str) -> None:
    """The measured metrics into the embedded bundle's int8 variants (other keys are kept).

    ``int8-dynamic`` keeps the accuracy (and its provenance) measured on the whole test set
    before, and no accuracy is replaced by one measured on fewer texts; batch invariance says by
    what it was measured."""
    root = ROOT / "runtime" / "models" / model
    manifest = bundle_writer.load(root)
    command = "python benchmarks/quant_table.py " + " ".join(sys.argv[1:])
    for v, acc in result["accuracy"].items():
        if v not in ("int8", PRUNED[model]) and (v != "int8-dynamic" or "invariance" not in result):
            continue
        m = manifest["variants"][v]["metrics"]
        if "invariance" in result:
            m["batch_invariance"] = {**result["invariance"][v], "measured_by": command}
        if v == "int8-dynamic" or m.get("n", 0) > result["test_texts"]:
            continue  # never replace a measurement with one on fewer texts
        m.update({k: acc[k] for k in ("accuracy", "fake_f1", "agreement_with_fp32") if k in acc})
        m.update(
            n=result["test_texts"],
            dataset=f"{dataset} ({result['test_texts']:,} texts)",
            measured_by=command,
            machine=f"{result['machine']['cpu']}, {result['machine']['cores']} cores, onnxruntime "
            f"{result['machine']['onnxruntime']}",
        )
    bundle_writer.save(root, manifest)


def render(model: str) -> str:
    """The markdown table of one run's JSON (docs/quantization.md carries it)."""
    from common import markdown_table

    r = json.loads((ROOT / "benchmarks" / "results" / f"quant_{model}.json").read_text(encoding="utf-8"))
    lat = r["latency_128_tokens"]
    acc = r.get("accuracy") or r.get("agreement_with_fp32_on_sample", {})
    rows = []
    for v, inv in r["invariance"].items():
        a = acc.get(v, {})
        cells = [f"`{v}`"]
        if "accuracy" in r:
            cells.append(f"{a['accuracy']:.4f}" if "accuracy" in a else "-")
        cells.append(f"{a['agreement_with_fp32']:.4f}" if "agreement_with_fp32" in a else "-")
        worst = max(inv["max_abs_diff_batched"], inv["max_abs_diff_shuffled"])
        cells += [
            "0" if worst == 0 else f"{worst:.1e}",
            inv["label_flips_batched"] + inv["label_flips_shuffled"],
        ]
        for key in ("b1_t1", "b32_t1", "b1_t2", "b32_t2"):
            t = lat[key].get(v)
            cells.append(
                f"{t['ms']:.1f} ({t['x_dynamic']:.2f}x; CPU {t['cpu_x_dynamic']:.2f}x)" if t else "-"
            )
        cells.append(f"{r['size_bytes'][v] / 2**20:.2f}")
        rows.append(cells)
    head = ["variant"] + (["accuracy"] if "accuracy" in r else [])
    head += ["agreement with fp32", "max change alone vs batched/shuffled", "label flips"]
    head += ["batch 1, 1 thread", "batch 32, 1 thread", "batch 1, 2 threads", "batch 32, 2 threads", "MiB"]
    m = r["machine"]
    inv_n = r["invariance"]["int8"]["texts"]
    scored = (
        f"{r['test_texts']:,} test texts for accuracy"
        if "accuracy" in r
        else f"{r.get('note', 'no accuracy')} ({inv_n} texts)"
    )
    note = (
        f"{scored}; invariance on {inv_n}; "
        f"latency: ms per call at 128 tokens (x int8-dynamic, wall and CPU time); {m['cpu']}, "
        f"{m['cores']} cores, onnxruntime {m['onnxruntime']}, load average "
        f"{lat['load_average_before']:.1f} -> {lat['load_average_after']:.1f} (a shared machine)"
    )
    return markdown_table(head, rows) + "\n\n" + note + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, choices=["albert-imdb", "albert-zh-rumor", "albert-base-v2"])
    ap.add_argument("--render", action="store_true", help="print the table of the last run's JSON")
    ap.add_argument("--write-manifests", action="store_true")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--invariance-texts", type=int, default=600)
    ap.add_argument("--test-every", type=int, default=1, help="every k-th test text (a busy machine)")
    ap.add_argument(
        "--manifest-only",
        action="store_true",
        help="only the shipped int8 variants' accuracy into the manifest (no fp32 export, no table)",
    )
    ap.add_argument("--work", type=Path, default=ROOT / "scratch" / "quant_table")
    ap.add_argument(
        "--calibration-texts",
        type=int,
        default=256,
        help="training texts the static variant is calibrated on",
    )
    a = ap.parse_args()
    if a.render:
        print(render(a.model))
        return
    hub_offline()
    if a.manifest_only:
        texts, labels, _, dataset = data(a.model)
        texts, labels = texts[:: a.test_every], labels[:: a.test_every]
        root = ROOT / "runtime" / "models" / a.model
        result = {"machine": machine(), "test_texts": len(texts)}
        result["accuracy"] = accuracy(root, ["int8", PRUNED[a.model]], texts, labels, reference=None)
        write_manifests(a.model, result, dataset + (f", every {a.test_every}th" if a.test_every > 1 else ""))
        return
    work = a.work / a.model
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root = scratch_bundle(a.model, work, log=lambda *_: None, calibration=a.calibration_texts)
    variants = ["fp32", "int8-dynamic", "int8", "static"]
    pruned = PRUNED.get(a.model)
    texts, labels, _, dataset = data(a.model if a.model != "albert-base-v2" else "albert-imdb")
    texts, labels = texts[:: a.test_every], labels[:: a.test_every]
    n_sample = 64 if a.model == "albert-base-v2" else a.invariance_texts  # albert-base: ~50x the compute
    sample = texts[:: max(1, len(texts) // n_sample)][:n_sample]
    result: dict[str, Any] = {"model": a.model, "machine": machine(), "test_texts": len(texts)}
    result["calibration_texts"] = a.calibration_texts
    with edgeclf.load(root, variant="fp32", providers="cpu") as clf:
        long = max(sample, key=lambda t: len(clf.tokenizer.encode(t)))
        ids = clf.tokenizer.encode(long)[:128]
    rounds = 3 if a.model == "albert-base-v2" else a.rounds
    result["latency_128_tokens"] = latency(root, variants, (ids * 128)[:128], rounds)
    measured = variants + ([pruned] if pruned else [])
    result["invariance"] = {v: invariance(root, v, sample) for v in measured}
    print(json.dumps(result["invariance"], indent=1), flush=True)
    files = bundle_writer.load(root)["variants"]
    result["size_bytes"] = {v: (root / files[v]["file"]["path"]).stat().st_size for v in measured}
    if a.model == "albert-base-v2":
        result["note"] = "random weights: no accuracy; agreement with fp32 on the sample is a weak signal"
        result["agreement_with_fp32_on_sample"] = accuracy(root, variants, sample, [0] * len(sample))
    else:
        result["accuracy"] = accuracy(root, measured, texts, labels)
    path = save(f"quant_{a.model}", result)
    print(render(a.model))
    if a.write_manifests and a.model in PRUNED:
        write_manifests(a.model, result, dataset + (f", every {a.test_every}th" if a.test_every > 1 else ""))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
