from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import edgeclf
from edgeclf.bundle import BundleError, open_bundle


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def _save(root: Path, m: dict) -> None:
    (root / "manifest.json").write_text(json.dumps(m))


def test_embedded_model_is_listed_and_verifies(keras_bundle):
    assert "keras-imdb" in edgeclf.list_models()
    b = open_bundle("keras-imdb")
    assert b.root == keras_bundle
    for v in b.manifest.variants.values():
        assert len(b.read_verified(v.file)) == v.file.size
    assert b.manifest.default_variant == "int8"
    assert b.manifest.labels == ("negative", "positive")


def test_manifest_records_measured_metrics(keras_bundle):
    m = open_bundle(keras_bundle).manifest
    for name in ("fp32", "int8"):
        metrics = m.variants[name].metrics
        assert metrics["n"] == 25_000 and metrics["accuracy"] >= 0.872
        assert metrics["measured_by"].startswith("edgeclf evaluate")
    assert m.variants["int8"].file.size < m.variants["fp32"].file.size / 3


@pytest.mark.parametrize("how", ["flip", "truncate", "replace", "delete"])
def test_tampered_model_is_refused_before_parsing(bundle_copy, how):
    f = bundle_copy / "model.int8.onnx"
    data = bytearray(f.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0x01
        f.write_bytes(bytes(data))
    elif how == "truncate":
        f.write_bytes(bytes(data[:-100]))
    elif how == "replace":
        f.write_bytes((bundle_copy / "model.onnx").read_bytes()[: len(data)])
    else:
        f.unlink()
    with pytest.raises(BundleError, match=r"model\.int8\.onnx"):
        edgeclf.load(bundle_copy)


def test_tampered_vocab_is_refused(bundle_copy):
    f = bundle_copy / "vocab.json"
    f.write_text(f.read_text().replace('"great"', '"grate"'))
    with pytest.raises(BundleError, match=r"checksum mismatch.*vocab\.json"):
        edgeclf.load(bundle_copy)


@pytest.mark.parametrize(
    "path", ["../model.onnx", "/etc/passwd", "a/../../x", "C:/x", "sub\\..\\x", "./model.onnx", ""]
)
def test_paths_outside_the_bundle_are_refused(bundle_copy, path):
    m = _manifest(bundle_copy)
    m["variants"]["int8"]["file"]["path"] = path
    _save(bundle_copy, m)
    with pytest.raises(BundleError, match="unsafe path"):
        open_bundle(bundle_copy)


def test_symlink_out_of_the_bundle_is_refused(bundle_copy, tmp_path):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((bundle_copy / "model.int8.onnx").read_bytes())
    (bundle_copy / "model.int8.onnx").unlink()
    os.symlink(outside, bundle_copy / "model.int8.onnx")
    with pytest.raises(BundleError, match="outside the bundle"):
        open_bundle(bundle_copy)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: m.update(format_version=99), "format_version 99"),
        (lambda m: m.update(format="other"), "format"),
        (lambda m: m.pop("labels"), "labels"),
        (lambda m: m.update(labels="pos"), "labels"),
        (lambda m: m.update(default_variant="fp16"), "default_variant"),
        (lambda m: m["variants"]["int8"]["file"].update(sha256="xyz"), "sha256"),
        (lambda m: m["variants"]["int8"]["file"].update(size="12"), "integer"),
        (lambda m: m.update(output_kind="softmaxish"), "output_kind"),
        (lambda m: m["inputs"][0].update(dtype="object"), "dtype"),
    ],
)
def test_malformed_manifest_is_refused(bundle_copy, mutate, message):
    m = _manifest(bundle_copy)
    mutate(m)
    _save(bundle_copy, m)
    with pytest.raises(BundleError, match=message):
        open_bundle(bundle_copy)


def test_non_json_manifest(bundle_copy):
    (bundle_copy / "manifest.json").write_bytes(b"\xff{not json")
    with pytest.raises(BundleError, match="malformed manifest"):
        open_bundle(bundle_copy)


def test_unknown_names_and_variants(keras_bundle):
    with pytest.raises(BundleError, match="no embedded model named 'nope'"):
        edgeclf.load("nope")
    with pytest.raises(BundleError, match="no variant 'fp16'"):
        edgeclf.load(keras_bundle, variant="fp16")
    with pytest.raises(BundleError, match="not found"):
        edgeclf.load("./no/such/dir")


def test_manifest_path_is_accepted(keras_bundle):
    assert edgeclf.load(keras_bundle / "manifest.json").manifest.name == "keras-imdb"
