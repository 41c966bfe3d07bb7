"""Build the ``edgeclf-gpu`` distribution from this repository's one pyproject.toml.

``edgeclf-gpu`` is ``edgeclf`` with two differences, like fastembed /
fastembed-gpu:

- its name, ``edgeclf-gpu``;
- it needs ``onnxruntime-gpu`` instead of ``onnxruntime`` (the two ship the same
  ``onnxruntime`` module and must never be installed together), and it has a
  ``[cuda]`` extra, ``onnxruntime-gpu[cuda,cudnn]``: the nvidia-* pip packages
  with CUDA and cuDNN, for machines without a system-wide CUDA.

The repository is never modified: the source tree is copied to a temporary
folder, only pyproject.toml is rewritten there (and checked, by parsing both
files, to differ in exactly those fields), and the wheel (and, with
``--sdist``, the sdist) are built from the copy into ``--out``.

    python deploy/gpu/build_edgeclf_gpu.py --out dist --sdist

Needs Python >= 3.11 (tomllib) and pip; ``--sdist`` needs ``pip install build``.
Both use build isolation, so setuptools comes from the package index (or pip's
cache). Releases publish both distributions with the same version: see
docs/gpu.md, "Releasing".
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
NAME = "edgeclf-gpu"
CPU_DEPENDENCY = "onnxruntime"
#: onnxruntime-gpu 1.21 is the first with preload_dlls() and the [cuda,cudnn] extras
#: (checked in its PyPI metadata: 1.20.2 has neither, 1.21.0 ... 1.31.1 have both)
GPU_REQUIREMENT = "onnxruntime-gpu>=1.21,<2"
CUDA_EXTRA = ("cuda", "onnxruntime-gpu[cuda,cudnn]>=1.21,<2")
#: never copied into the build tree (when the source is not a git checkout)
JUNK = (".git", ".venv*", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".tox")


def _requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(@]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def rewrite_pyproject(text: str) -> str:
    """pyproject.toml text of edgeclf -> that of edgeclf-gpu; raises if anything else would change."""
    old = tomllib.loads(text)
    project_at = text.index("[project]\n")
    new, n = re.subn(r'(?m)^name = "edgeclf"$', f'name = "{NAME}"', text[project_at:], count=1)
    if n != 1:
        raise SystemExit('pyproject.toml: no line `name = "edgeclf"` in [project]')
    new = text[:project_at] + new
    dep = re.compile(r'(?m)^(\s*)"onnxruntime(?=[\s<>=!~;"])[^"]*",?$')
    new, n = dep.subn(lambda m: f'{m.group(1)}"{GPU_REQUIREMENT}",', new)
    if n != 1:
        raise SystemExit(f"pyproject.toml: expected exactly one {CPU_DEPENDENCY} dependency line, found {n}")
    header = "[project.optional-dependencies]\n"
    if header not in new or CUDA_EXTRA[0] in old["project"].get("optional-dependencies", {}):
        raise SystemExit(f"pyproject.toml: cannot add the [{CUDA_EXTRA[0]}] extra")
    new = new.replace(
        header,
        f"{header}# edgeclf-gpu only (written by deploy/gpu/build_edgeclf_gpu.py): CUDA + cuDNN from pip\n"
        f'{CUDA_EXTRA[0]} = ["{CUDA_EXTRA[1]}"]\n',
        1,
    )
    # the proof that nothing else changed: the parsed files differ in exactly these fields
    expected = copy.deepcopy(old)
    project = expected["project"]
    project["name"] = NAME
    project["dependencies"] = [
        GPU_REQUIREMENT if _requirement_name(r) == CPU_DEPENDENCY else r for r in project["dependencies"]
    ]
    project.setdefault("optional-dependencies", {})[CUDA_EXTRA[0]] = [CUDA_EXTRA[1]]
    if tomllib.loads(new) != expected:
        raise SystemExit("pyproject.toml: the rewrite changed more than name and onnxruntime (a bug here)")
    return new


def _source_files(src: Path) -> list[Path] | None:
    """The repository's files (tracked + untracked, not ignored), or None without git."""
    if not (src / ".git").exists():
        return None
    out = subprocess.run(
        ["git", "-C", str(src), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    return [Path(p.decode()) for p in out.split(b"\0") if p]


def copy_tree(src: Path, dst: Path) -> None:
    files = _source_files(src)
    if files is None:
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*JUNK), symlinks=True)
        return
    for rel in files:
        if not (src / rel).is_file():  # deleted in the working tree but still in the index
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)


def build(src: Path, out: Path, sdist: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgeclf-gpu-build-") as tmp:
        tree, built = Path(tmp) / "src", Path(tmp) / "dist"
        tree.mkdir()
        copy_tree(src, tree)
        pyproject = tree / "pyproject.toml"
        pyproject.write_text(rewrite_pyproject(pyproject.read_text(encoding="utf-8")), encoding="utf-8")
        if sdist:
            if importlib.util.find_spec("build") is None:
                raise SystemExit("--sdist needs the build frontend: pip install build")
            cmd = [sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(built), str(tree)]
        else:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                "--wheel-dir",
                str(built),
                str(tree),
            ]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        return [Path(shutil.move(str(f), str(out / f.name))) for f in sorted(built.iterdir())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "dist", help="where the wheel goes (default: dist/)"
    )
    parser.add_argument("--src", type=Path, default=ROOT, help="the edgeclf source tree (default: this repo)")
    parser.add_argument(
        "--sdist", action="store_true", help="also build the sdist (needs `pip install build`)"
    )
    args = parser.parse_args(argv)
    for path in build(args.src.resolve(), args.out.resolve(), args.sdist):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
