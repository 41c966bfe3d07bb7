"""README.md and docs/*.md agree with their sources: the generated parts with the manifests, results
and CLI parser they are rendered from (benchmarks/render_docs.py), the model figures quoted in prose
with the manifests; every relative link resolves; the front page stays short and keeps CI's commands."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("render_docs", ROOT / "benchmarks" / "render_docs.py")
render_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_docs)

DOCS = render_docs.DOCS
README = ROOT / "README.md"
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")


def _prose(text: str) -> str:
    """The text without fenced code and generated parts (those are checked by rendering)."""
    text = render_docs.BLOCK.sub("", text)
    text = render_docs.INLINE.sub("", text)
    return FENCE.sub("", text)


def test_generated_parts_match_their_sources():
    stale = [
        f"{p.relative_to(ROOT)}: {line}" for p in DOCS for line in render_docs.stale_parts(p.read_text())
    ]
    assert not stale, "re-render with `python benchmarks/render_docs.py`:\n" + "\n".join(stale)


def test_a_stale_figure_or_block_is_caught():
    text = (
        "int8 scores <!-- fig:m/keras-imdb/int8/accuracy -->0.1234<!-- /fig -->.\n\n"
        "<!-- figures:models-table -->\n| a hand-edited row |\n<!-- /figures -->\n"
    )
    assert len(list(render_docs.stale_parts(text))) == 2
    fixed = render_docs.render(text)
    assert not list(render_docs.stale_parts(fixed))
    accuracy = render_docs.manifests()["keras-imdb"]["variants"]["int8"]["metrics"]["accuracy"]
    assert f"{accuracy:.4f}" in fixed


def _model_figures(models: list[str]) -> set[float]:
    """Every number in the metrics of these models' variants (shipped or measured at export)."""
    found: set[float] = set()

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            found.add(float(x))

    for name in models:
        for v in render_docs.variants(render_docs.manifests()[name]).values():
            walk(v.get("metrics"))
    return found


def _units(text: str) -> list[str]:
    """Paragraphs and table rows: a figure and the model it belongs to are quoted in one unit."""
    units = []
    for para in re.split(r"\n\s*\n", text):
        rows = [line for line in para.splitlines() if line.lstrip().startswith("|")]
        units += rows
        rest = "\n".join(line for line in para.splitlines() if not line.lstrip().startswith("|"))
        units.append(rest)
    return units


def _quoted_figures(unit: str, variants: set[str]) -> list[str]:
    """Figures quoted as a variant's or a model's accuracy or F1: "int8 0.8999", "**0.809** int8",
    "accuracy 0.807", "F1 0.779"."""
    var = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
    num = r"(0\.\d{3,4})(?![\d])"
    gap = r"[`*:)=\s]{1,4}"
    patterns = [rf"(?<![\w-])(?:{var}){gap}{num}", rf"(?<![\d.]){num}\**\s(?:{var})(?![\w-])"]
    patterns.append(rf"(?i:accuracy|F1){gap}(?:of\s)?{num}")
    return [m.group(1) for p in patterns for m in re.finditer(p, unit)]


def _contradictions(text: str, label: str) -> list[str]:
    manifests = render_docs.manifests()
    bad = []
    for unit in _units(_prose(text)):
        models = [n for n in manifests if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", unit)]
        if not models:
            continue
        known = _model_figures(models)
        names = {v for n in models for v in render_docs.variants(manifests[n])}
        for figure in _quoted_figures(unit, names):
            digits = len(figure) - 2
            if not any(round(k, digits) == float(figure) for k in known):
                bad.append(f"{label}: {figure} beside {', '.join(models)}: {unit[:160]!r}")
    return bad


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_figures_quoted_beside_a_model_come_from_its_manifest(path):
    # An accuracy or F1 written by hand next to an embedded model's name must be one of the figures its
    # manifest holds (at the precision quoted); better still, render it with <!-- fig:m/... -->.
    bad = _contradictions(path.read_text(), str(path.relative_to(ROOT)))
    assert not bad, "\n".join(bad)


def test_a_contradicting_figure_is_caught():
    text = "`albert-imdb` int8 0.8448 on IMDB.\n\nAnd keras-imdb 0.8766, albert-imdb 0.8999.\n"
    bad = _contradictions(text, "probe")
    assert len(bad) == 1 and "0.8448" in bad[0]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.*)", line):
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(path):
    bad = []
    for m in LINK.finditer(FENCE.sub("", path.read_text())):
        target = next(g for g in m.groups() if g)
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading with that anchor in {dest.name}")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)


def test_readme_is_a_short_front_page_with_ci_commands():
    text = README.read_text()
    assert len(text.encode()) <= 10 * 1024, f"README.md is {len(text.encode())} bytes; move detail to docs/"
    ci = (ROOT / ".ci" / "run").read_text()
    # the two set-up commands, as CI runs them
    assert "pip install . && edgeclf predict examples/reviews.csv" in text
    assert "/bin/pip install -q ." in ci and 'edgeclf predict "$OLDPWD/examples/reviews.csv"' in ci
    assert "pip install torch==2.13.0 && pip install -e '.[export,test,serve,spark]'" in text
    assert "pip install -q torch==2.13.0" in ci and "pip install -q -e '.[export,test,serve,spark]'" in ci
    assert "<!-- figures:models-table -->" in text


def _help(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "edgeclf", *args, "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_cli_reference_matches_the_help_the_commands_print():
    # the block is rendered from build_parser(); this checks it against what users see, and catches a
    # block that was never added or never re-rendered after a new option
    doc = (ROOT / "docs" / "cli.md").read_text()
    block = re.search(r"<!-- figures:cli-reference -->\n(.*?)<!-- /figures -->", doc, re.S)
    assert block, "docs/cli.md has no cli-reference block"
    top = _help()
    commands = re.findall(r"^ {4}([a-z][\w-]*)\s{2,}", top, re.M)
    assert "predict" in commands, top
    for name in commands:
        assert f"### `edgeclf {name}`" in block.group(1), f"edgeclf {name} is not in docs/cli.md"
    for name in ("predict", "models", "info", "profile", "serve"):
        for flag in re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", _help(name)):
            assert f"`{flag}`" in block.group(1) or flag in ("-h", "--help"), f"{name}: {flag} missing"


def test_the_readme_python_example_runs():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code, "README.md has no Python example"
    r = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


HISTORY = re.compile(
    r"\bthis (?:session|round)\b|\b(?:last|previous) session\b|\bfirst round\b|\bissue \d+\b|\(was \d"
    r"|\bused to (?:advise|mean|be)\b|\bno longer holds\b",
    re.I,
)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_describe_things_as_they_are(path):
    # the measured history lives in git and benchmarks/results; docs say what is, not how it came to be
    found = [
        f"{m.group(0)!r} in {line.strip()[:120]!r}"
        for line in path.read_text().splitlines()
        for m in HISTORY.finditer(line)
    ]
    assert not found, f"{path.relative_to(ROOT)} narrates history: " + "; ".join(found)
