"""What the wheel ships is listed with its terms: NOTICE, and a model card in every bundle."""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import zipfile

import pytest

from edgeclf.bundle import embedded_names, embedded_root, open_bundle
from edgeclf.export import model_card

from .conftest import ROOT

NOTICE = ROOT / "NOTICE"
CARDS = {
    "keras-imdb": model_card.keras_imdb,
    "albert-imdb": model_card.albert_imdb,
    "albert-zh-rumor": model_card.albert_zh_rumor,
}


def notice_files() -> set[str]:
    """``runtime/models/NAME/FILE`` paths NOTICE names (``a, b`` after a directory lists several)."""
    named: set[str] = set()
    for line in NOTICE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(runtime/models/[^/]+/)(.+?),?$", line.strip())
        if m:
            named.update(m.group(1) + f.strip() for f in m.group(2).split(",") if f.strip())
    return named


@pytest.mark.parametrize("name", embedded_names())
def test_every_embedded_bundle_names_its_training_data(name):
    card = open_bundle(name).manifest.model_card
    assert card["training_data"], "a model card must name the training data"
    assert all(d["id"] in model_card.DATASETS and d["terms"] for d in card["training_data"])
    expected = CARDS[name]()
    pruning = open_bundle(name).manifest.extra.get("derived_by_pruning")
    if pruning:  # a bundle of a pruned checkpoint: the card edgeclf prune wrote
        expected = model_card.pruned(expected, pruning)
    manifest = open_bundle(name).manifest
    expected = model_card.reads(
        expected, manifest.tokenizer.config, manifest.max_length, manifest.long_texts.mode
    )
    assert card == expected, "the embedded card and export/model_card.py must agree"


@pytest.mark.parametrize("name", embedded_names())
def test_notice_lists_every_shipped_model_file(name):
    named = notice_files()
    for f in sorted((embedded_root() / name).iterdir()):
        rel = f"runtime/models/{name}/{f.name}"
        assert rel in named or (f.name == "manifest.json" and "runtime/models/*/manifest.json" in named), rel


@pytest.mark.parametrize(
    ("checkpoint", "name"),
    [
        ("albert-imdb", "albert-imdb"),
        ("albert-imdb-ffn1024", "albert-imdb"),
        ("albert-zh-rumor", "albert-zh-rumor"),
    ],
)
def test_project_checkpoints_carry_the_card_export_copies(checkpoint, name):
    d = ROOT / "checkpoints" / checkpoint
    if not d.is_dir():
        pytest.skip(f"checkpoints/{checkpoint} is not in this checkout")
    expected = CARDS[name]()
    if (d / "pruning.json").is_file():  # written by edgeclf prune, with the card it derives
        expected = model_card.pruned(expected, json.loads((d / "pruning.json").read_text(encoding="utf-8")))
    assert model_card.read_for_checkpoint(d) == expected


def test_a_checkpoint_without_a_card_says_so(tmp_path):
    card = model_card.read_for_checkpoint(tmp_path)
    assert card["training_data"] == [] and "not recorded" in card["notes"]
    (tmp_path / model_card.FILE).write_text(json.dumps({"training_data": "imdb"}))
    with pytest.raises(ValueError, match="training_data"):
        model_card.read_for_checkpoint(tmp_path)


def test_wheel_and_sdist_ship_notice_and_only_listed_data(tmp_path):
    """Build both from a copy of the sources (setuptools, offline) and read what is inside."""
    build_meta = pytest.importorskip("setuptools.build_meta")
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md", "NOTICE"):
        shutil.copy(ROOT / f, src / f)
    for d in ("runtime", "export", "quantize"):
        shutil.copytree(ROOT / d, src / d, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    out.mkdir()
    cwd = os.getcwd()
    os.chdir(src)
    try:
        wheel = out / build_meta.build_wheel(str(out))
        sdist = out / build_meta.build_sdist(str(out))
    finally:
        os.chdir(cwd)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert any(n.endswith(".dist-info/licenses/NOTICE") or n.endswith(".dist-info/NOTICE") for n in names), (
        names
    )
    data = [n for n in names if not n.endswith(".py") and ".dist-info/" not in n]
    listed = {f.replace("runtime/", "edgeclf/", 1) for f in notice_files()}
    own = {"edgeclf/py.typed", "edgeclf/profile/profile_samples.txt", "edgeclf/edgeclf-serve.service"}
    for n in data:
        ok = n in listed or n in own or re.fullmatch(r"edgeclf/models/[^/]+/manifest\.json", n)
        assert ok, f"{n} is shipped in the wheel but not listed in NOTICE"
    with tarfile.open(sdist) as t:
        members = [m.name.split("/", 1)[1] for m in t.getmembers() if "/" in m.name]
    assert "NOTICE" in members
