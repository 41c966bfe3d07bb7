"""benchmarks/model_report.py's verdicts: what docs/models.md says each pruned variant hits or misses."""

from __future__ import annotations

from .conftest import benchmark_module


def _row(variant: str, n: int, accuracy: float, ms_1: float, ms_2: float) -> dict:
    return {
        "task": "imdb",
        "model": "albert-imdb",
        "variant": variant,
        "n": n,
        "accuracy": accuracy,
        "latency_b1_128_ms": ms_1,
        "latency_b1_128_ms_2_threads": ms_2,
    }


def test_a_pruned_variant_is_judged_against_the_one_it_was_cut_from_on_both_thread_counts():
    mt = benchmark_module("model_report")
    rows = [
        _row("ngram-int8", 25_000, 0.9150, 6.0, 6.6),
        _row("ngram-pruned-int8", 25_000, 0.9090, 3.0, 4.6),  # 2x on 1 thread, 1.43x on 2
        _row("int8", 1_000, 0.9200, 5.6, 6.0),
        _row("pruned-int8", 25_000, 0.8900, 3.4, 3.6),  # measured on other texts than int8
        {**_row("pruned-int8", 25_000, 0.80, 1.0, 1.0), "model": "albert-imdb (previous)"},
    ]
    mt._mark_pruned(rows)
    target = rows[1]["target"]
    assert "speed / ngram-int8, 1 thread 2.0 >= 1.5: hit" in target
    assert "speed / ngram-int8, 2 threads 1.43 >= 1.5: missed by 0.07" in target
    assert "points below ngram-int8 0.6 <= 1.0: hit" in target
    # accuracy on 1,000 reviews against accuracy on 25,000 is no verdict; an earlier bundle gets none
    assert "target" not in rows[3] and "target" not in rows[4]
    assert "target" not in rows[0] and "target" not in rows[2]


def test_manifest_figures_without_a_float_file_to_recompute_them_stay(tmp_path):
    """A bundle that no longer ships its fp32 file cannot re-measure agreement with it: writing the
    manifests must keep the figure measured when the file was there, and replace what was measured."""
    import json
    import shutil

    from edgeclf.bundle import open_bundle

    report = benchmark_module("model_report")
    root = tmp_path / "zh"
    shutil.copytree(open_bundle("albert-zh-rumor").root, root)
    before = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["variants"]["int8"]["metrics"]
    assert "fp32" not in json.loads((root / "manifest.json").read_text(encoding="utf-8"))["variants"]
    row = {
        "task": "zh weibo_test",
        "model": str(root),
        "variant": "int8",
        "n": 586,
        "accuracy": 0.5,
        "ece": 0.1,
    }
    report.write_manifests([row], {}, (str(root),))
    after = json.loads((root / "manifest.json").read_text(encoding="utf-8"))["variants"]["int8"]["metrics"]
    assert after["accuracy"] == 0.5 and after["ece"] == 0.1
    assert after["agreement_with_fp32"] == before["agreement_with_fp32"]
    assert "ece_after_temperature" not in after  # measured before, not by this run: dropped
