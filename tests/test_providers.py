"""Provider + variant chosen together (docs/gpu.md).

CI has no GPU, so the list of providers onnxruntime offers is faked at the
boundary (``select(..., available=...)``); everything else is the real
manifest parser on real bundles. The GPU run itself is docs/gpu.md's script.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import edgeclf
from edgeclf import bundle
from edgeclf.session import ProviderError, select

CPU = ["CPUExecutionProvider"]
GPU = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def manifest_with(tmp_path: Path, name: str, prefs: dict | None, precision: dict | None = None):
    src = bundle.open_bundle(name).root
    dst = tmp_path / name
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    if prefs is None:
        m.pop("provider_variants", None)
    else:
        m["provider_variants"] = prefs
    for v, p in (precision or {}).items():
        m["variants"][v]["precision"] = p
    (dst / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    return bundle.open_bundle(dst).manifest


@pytest.fixture()
def gpu_bundle(tmp_path):
    """albert-imdb as a bundle that prefers fp16 on CUDA (the int8 file stands in for
    fp16's file: selection never opens it)."""
    src = bundle.open_bundle("albert-imdb").root
    dst = tmp_path / "gpu-bundle"
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text(encoding="utf-8"))
    int8 = m["variants"]["int8"]
    m["variants"]["fp16"] = {**int8, "precision": "fp16"}
    m["variants"]["int8"]["precision"] = "int8"
    m["provider_variants"] = {"cuda": "fp16", "cpu": "int8"}
    (dst / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    return bundle.open_bundle(dst).manifest


def test_auto_takes_the_float_variant_on_cuda_and_int8_on_the_cpu(gpu_bundle):
    assert select(gpu_bundle, "auto", None, GPU, cuda_ok=True) == (GPU, "fp16")
    assert select(gpu_bundle, "auto", None, CPU) == (CPU, "int8")


def test_a_cpu_only_bundle_stays_on_the_cpu_under_auto_on_a_gpu_machine():
    keras = bundle.open_bundle("keras-imdb").manifest
    assert keras.provider_variants == {"cpu": "int8"}
    assert select(keras, "auto", None, GPU, cuda_ok=True) == (CPU, "int8")


def test_explicit_variant_and_providers_always_win(gpu_bundle):
    # an int8 variant asked for by name runs where int8 is preferred: the CPU
    assert select(gpu_bundle, "auto", "int8", GPU, cuda_ok=True) == (CPU, "int8")
    # a float variant asked for by name goes to the GPU
    assert select(gpu_bundle, "auto", "fp16", GPU, cuda_ok=True) == (GPU, "fp16")
    # explicit providers: the variant the bundle prefers there, unless named
    assert select(gpu_bundle, "cuda", None, GPU, cuda_ok=True) == (GPU, "fp16")
    assert select(gpu_bundle, "cpu", None, GPU, cuda_ok=True) == (CPU, "int8")
    assert select(gpu_bundle, "cuda", "int8", GPU, cuda_ok=True) == (GPU, "int8")


def test_auto_ignores_a_cuda_provider_that_cannot_start(gpu_bundle):
    # onnxruntime-gpu lists CUDAExecutionProvider even on a machine without a GPU or CUDA libraries
    assert select(gpu_bundle, "auto", None, GPU, cuda_ok=False) == (CPU, "int8")


def test_cuda_where_it_is_absent_is_an_error_not_a_fallback(gpu_bundle):
    with pytest.raises(ProviderError, match="onnxruntime-gpu"):
        select(gpu_bundle, "cuda", None, CPU)


def test_bundles_without_preferences_run_their_default_on_the_cpu(tmp_path):
    legacy = manifest_with(tmp_path, "albert-imdb", None)
    assert select(legacy, "auto", None, GPU, cuda_ok=True) == (CPU, legacy.default_variant)


def test_manifest_preferences_must_name_existing_variants(tmp_path):
    with pytest.raises(bundle.BundleError, match=r"provider_variants\.cuda"):
        manifest_with(tmp_path, "albert-imdb", {"cuda": "nope"})


def test_what_ran_is_visible_on_this_cpu_machine():
    clf = edgeclf.load("albert-imdb")
    assert clf.providers[0] == "CPUExecutionProvider"
    assert clf.runs_on == f"{clf.variant.name} on CPU"
    assert "variant=" in repr(clf) and "CPUExecutionProvider" in repr(clf)


def test_every_embedded_bundle_says_where_it_runs():
    for name in bundle.embedded_names():
        m = bundle.open_bundle(name).manifest
        assert "cpu" in m.provider_variants, name
        # fp16 is GPU math: on a CPU it is emulated and slow (int8, or an fp32 n-gram head, run there)
        assert m.variants[m.provider_variants["cpu"]].precision != "fp16", name
        if "cuda" in m.provider_variants:
            assert m.variants[m.provider_variants["cuda"]].precision == "fp16", name
