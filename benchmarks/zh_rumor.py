"""Chinese rumor detection on weibo_test: the albert-zh-rumor bundle vs a baseline.

Accuracy and precision / recall / F1 of the fake class for each variant of
the bundle (through ``edgeclf.load``, the path users run) and for a
character n-gram logistic regression trained on the same split.

    python benchmarks/zh_rumor.py [--bundle runtime/models/albert-zh-rumor] [--extra-bundle DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from common import ROOT, machine, markdown_table, save

import edgeclf
from edgeclf.export.zh_rumor import load_split, metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", nargs="+", default=[str(ROOT / "runtime" / "models" / "albert-zh-rumor")])
    args = p.parse_args()
    split = load_split()
    texts, labels = split["test"]
    rows, results = [], {}
    for bundle in args.bundle:
        for v in edgeclf.load(bundle).manifest.variants:
            clf = edgeclf.load(bundle, variant=v, providers="cpu")
            pred = clf.predict_proba(texts).argmax(1).tolist()
            m = metrics(labels, pred)
            results[f"{clf.manifest.name}/{v}"] = {**m, "size_bytes": clf.variant.file.size}
            rows.append(
                [
                    f"edgeclf {clf.manifest.name} {v}",
                    m["accuracy"],
                    m["fake_precision"],
                    m["fake_recall"],
                    m["fake_f1"],
                    m["n"],
                ]
            )
    base = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "zh_baseline.py"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    b = json.loads(base.stdout)
    results["baseline"] = b
    rows.append([b["model"], b["accuracy"], b["fake_precision"], b["fake_recall"], b["fake_f1"], b["n"]])
    save(
        "zh_rumor",
        {
            "machine": machine(),
            "split": split["stats"],
            "train": len(split["train"][0]),
            "test": len(texts),
            "test_empty_excluded": split["test_empty"],
            "results": results,
        },
    )
    print(markdown_table(["model", "accuracy", "fake precision", "fake recall", "fake F1", "posts"], rows))
    print(
        f"\nsplit: {len(split['train'][0])} training posts after {split['stats']}; "
        f"test: {len(texts)} non-empty weibo_test posts ({split['test_empty']} empty ones excluded)"
    )


if __name__ == "__main__":
    main()
