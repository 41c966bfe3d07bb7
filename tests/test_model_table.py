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
