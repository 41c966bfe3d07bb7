"""Memory and start-up of every embedded model as a desktop app sees them (docs/desktop.md).

For each model and variant, N fresh processes (``edgeclf.profile.footprint.fresh_process``):
import time, load time, first prediction, and RSS: what loading adds as the
first model (onnxruntime's one-time set-up included), what each further
instance adds, and what stays after closing both. Medians of N.

    python benchmarks/desktop.py [--runs 3]

Writes benchmarks/results/desktop.json and the table docs/desktop.md includes
(benchmarks/results/desktop.md).
"""

from __future__ import annotations

import argparse
import statistics

from common import ROOT, machine, markdown_table, save

import edgeclf
from edgeclf.profile import footprint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rows, result = [], {"machine": machine(), "runs": args.runs, "models": {}}
    for name in edgeclf.list_models():
        for variant in edgeclf.load(name).manifest.variants:
            runs = [footprint.fresh_process(name, variant, memory=True) for _ in range(args.runs)]

            def med(key: str, scale: float, runs=runs) -> float:
                return round(statistics.median(r[key] for r in runs) / scale, 1)

            entry = {
                "import_ms": med("import_s", 1e-3),
                "load_ms": med("load_s", 1e-3),
                "first_predict_ms": med("first_predict_s", 1e-3),
                "first_model_mib": med("load_bytes", 2**20),
                "each_further_mib": med("second_load_bytes", 2**20),
                "left_after_close_mib": med("closed_bytes", 2**20),
                "base_rss_mib": med("base_rss_bytes", 2**20),
            }
            result["models"][f"{name}/{variant}"] = entry
            rows.append([f"{name} / {variant}", *entry.values()])
    save("desktop", result)
    m = result["machine"]
    table = markdown_table(
        [
            "model / variant",
            "import ms",
            "load ms",
            "first predict ms",
            "RSS +MiB, first model",
            "+MiB per further instance",
            "+MiB left after close",
            "RSS after imports MiB",
        ],
        rows,
    )
    text = (
        f"{table}\n\nMedians of {args.runs} fresh processes; {m['cpu']}, {m['cores']} cores, "
        f"{m['platform']}, Python {m['python']}, onnxruntime {m['onnxruntime']}, load average at start "
        f"{m['load_average']:.1f}.\n"
    )
    (ROOT / "benchmarks" / "results" / "desktop.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
