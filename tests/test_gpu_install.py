"""The GPU install path, on a CPU machine: ``edgeclf-gpu`` built and installed for real.

deploy/gpu/build_edgeclf_gpu.py builds the ``edgeclf-gpu`` wheel (and sdist)
from this repository; it is installed with pip into one fresh venv (module
scope: onnxruntime-gpu is a 255.6 MB wheel, installed once for all tests)
and checked there: onnxruntime-gpu installed and onnxruntime (CPU) not,
CUDAExecutionProvider offered, ``edgeclf predict`` byte-identical to this
interpreter's CPU install, ``edgeclf.gpu.diagnose_cuda()`` naming what is
missing, and finally (the venv is changed, so it runs last) the broken
state "onnxruntime installed over onnxruntime-gpu" detected and repaired by
the very command the message gives.

Needs the package index (PyPI or a mirror): CI has it. Measured on the
shared 2-core x86_64 dev machine: 94 to 165 s for the file, with or without
pip's cache (the 255.6 MB onnxruntime-gpu wheel downloads in about 8 s there;
pip's work on 2 busy cores dominates). The tests that install are marked slow
and network; CI runs them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "deploy" / "gpu" / "build_edgeclf_gpu.py"
CSV = ROOT / "examples" / "reviews.csv"
ENV = {
    k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_TARGET")
} | {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def sh(*cmd: str | Path, cwd: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=timeout
    )
    assert r.returncode == 0, f"{shlex.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def timed(label: str, *cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    t = time.perf_counter()
    r = sh(*cmd, **kw)
    print(f"TIMING {label}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """edgeclf-gpu wheel + sdist (the script) and, to compare, the edgeclf wheel, from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    sdist = ["--sdist"] if _has_build() else []
    before = _build_traces()
    r = timed("build edgeclf-gpu", sys.executable, BUILD, "--out", out, *sdist)
    # the README's `pip install "$(python deploy/gpu/build_edgeclf_gpu.py)[cuda]"` relies on this output
    assert sorted(r.stdout.split()) == sorted(str(p) for p in out.glob("edgeclf_gpu-*")), r.stdout
    assert _build_traces() == before, "the build wrote into the repository"
    # the CPU wheel, built from a copy as well (pip builds in place: build/ and *.egg-info)
    _script().copy_tree(ROOT, out / "cpu-src")
    timed(
        "build edgeclf",
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        out / "cpu",
        out / "cpu-src",
    )
    return out


def _build_traces() -> dict[str, object]:
    """What an in-place build would change: pyproject.toml, build/, dist/, *.egg-info."""
    return {
        "pyproject": (ROOT / "pyproject.toml").read_bytes(),
        "dirs": sorted(
            p.name for p in ROOT.iterdir() if p.name in ("build", "dist") or p.suffix == ".egg-info"
        ),
        "runtime": sorted(p.name for p in (ROOT / "runtime").glob("*.egg-info")),
    }


def _has_build() -> bool:
    return importlib.util.find_spec("build") is not None


def gpu_wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("edgeclf_gpu-*.whl")
    return wheel


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv with `pip install edgeclf-gpu` (from the wheel just built): the documented command."""
    root = tmp_path_factory.mktemp("gpu-venv") / "venv"
    sh(sys.executable, "-m", "venv", root)
    timed("pip install edgeclf-gpu (fresh venv)", root / "bin" / "pip", "install", "-q", gpu_wheel(dist))
    return root


def py(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    return sh(venv / "bin" / "python", "-c", code, cwd=cwd)


@pytest.mark.slow
@pytest.mark.network
def test_gpu_wheel_is_edgeclf_with_onnxruntime_gpu(dist):
    """One source of truth: same files, same metadata, except the name and the onnxruntime requirement."""
    gpu, (cpu,) = gpu_wheel(dist), (dist / "cpu").glob("edgeclf-*.whl")
    with zipfile.ZipFile(gpu) as g, zipfile.ZipFile(cpu) as c:
        payload = {n: g.read(n) for n in g.namelist() if ".dist-info/" not in n}
        assert payload == {n: c.read(n) for n in c.namelist() if ".dist-info/" not in n}
        assert any(n.endswith("models/keras-imdb/manifest.json") for n in payload)
        meta_g = g.read(next(n for n in g.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        meta_c = c.read(next(n for n in c.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        entry = [z.read(next(n for n in z.namelist() if n.endswith("entry_points.txt"))) for z in (g, c)]
        assert entry[0] == entry[1]
    only_g = set(meta_g.splitlines()) - set(meta_c.splitlines())
    only_c = set(meta_c.splitlines()) - set(meta_g.splitlines())
    assert "Name: edgeclf" in only_c and len(only_c) == 2, only_c
    assert re.fullmatch(r"Requires-Dist: onnxruntime[<>=!~].*", (only_c - {"Name: edgeclf"}).pop()), only_c
    assert only_g == {
        "Name: edgeclf-gpu",
        "Requires-Dist: onnxruntime-gpu<2,>=1.21",
        "Provides-Extra: cuda",
        'Requires-Dist: onnxruntime-gpu[cuda,cudnn]<2,>=1.21; extra == "cuda"',
    }, only_g
    if _has_build():
        (sdist,) = dist.glob("edgeclf_gpu-*.tar.gz")
        import tarfile

        with tarfile.open(sdist) as t:
            pkg_info = t.extractfile(next(m for m in t.getmembers() if m.name.endswith("/PKG-INFO"))).read()
            names = t.getnames()
        assert b"Name: edgeclf-gpu" in pkg_info and b"Requires-Dist: onnxruntime-gpu" in pkg_info
        assert any(n.endswith("runtime/gpu.py") for n in names)


@pytest.mark.slow
@pytest.mark.network
def test_fresh_venv_has_onnxruntime_gpu_only(venv, tmp_path):
    r = py(
        venv,
        "import json, importlib.metadata as m, onnxruntime\n"
        "def v(d):\n"
        "    try: return m.version(d)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({d: v(d) for d in ('onnxruntime', 'onnxruntime-gpu', 'edgeclf', 'edgeclf-gpu')}"
        " | {'providers': onnxruntime.get_available_providers()}))",
        tmp_path,
    )
    got = json.loads(r.stdout)
    assert got["onnxruntime-gpu"] and got["edgeclf-gpu"], got
    assert got["onnxruntime"] is None and got["edgeclf"] is None, got
    assert "CUDAExecutionProvider" in got["providers"], got
    sh(venv / "bin" / "pip", "check")


@pytest.mark.slow
@pytest.mark.network
def test_predict_on_cpu_same_bytes_as_cpu_install(venv, tmp_path):
    """edgeclf-gpu on the CPU gives the CPU install's exact CSV, also under `auto` where CUDA cannot run."""
    cuda_usable = py(
        venv, "import edgeclf.gpu as g; g.preload_cuda_libraries(); print(g.diagnose_cuda())", tmp_path
    )
    providers = ["cpu"] if cuda_usable.stdout.strip() == "None" else ["cpu", "auto"]
    for model in ("keras-imdb", "albert-imdb"):
        for provider in providers:
            gpu_out, cpu_out = tmp_path / f"gpu-{model}-{provider}.csv", tmp_path / f"cpu-{model}.csv"
            args = ["predict", CSV, "--model", model, "--provider", provider, "-q"]
            sh(venv / "bin" / "edgeclf", *args, "-o", gpu_out, cwd=tmp_path)
            if not cpu_out.exists():
                sh(
                    sys.executable,
                    "-m",
                    "edgeclf",
                    *args[:-3],
                    "--provider",
                    "cpu",
                    "-q",
                    "-o",
                    cpu_out,
                    cwd=tmp_path,
                )
            assert gpu_out.read_bytes() == cpu_out.read_bytes(), (model, provider)
            assert len(gpu_out.read_text().splitlines()) == 9
    # the README's first command, unchanged, with edgeclf-gpu
    r = sh(venv / "bin" / "edgeclf", "predict", CSV, cwd=tmp_path)
    assert r.stdout == (tmp_path / "cpu-keras-imdb.csv").read_text()


@pytest.mark.slow
@pytest.mark.network
def test_diagnose_names_what_cuda_lacks(venv, tmp_path):
    """On a machine without CUDA libraries the diagnosis names the missing library and the install."""
    r = py(
        venv,
        "import json, edgeclf.gpu as g\n"
        "p = g.preload_cuda_libraries()\n"
        "print(json.dumps({'called': p.called, 'messages': p.messages, 'diagnosis': g.diagnose_cuda()}))",
        tmp_path,
    )
    assert len(r.stdout.splitlines()) == 1, r.stdout  # onnxruntime's prints were captured, stdout is clean
    got = json.loads(r.stdout)
    assert got["called"], got  # onnxruntime-gpu >= 1.21 has preload_dlls()
    if got["diagnosis"] is None:  # a machine where CUDA works: the session must really use it
        code = "import edgeclf; print(edgeclf.load('albert-imdb', providers='cuda').providers[0])"
        assert py(venv, code, tmp_path).stdout.strip() == "CUDAExecutionProvider"
        return
    d = got["diagnosis"]
    assert "onnxruntime-gpu" in d and "edgeclf-gpu[cuda]" in d and "onnxruntime-gpu[cuda,cudnn]" in d, d
    assert re.search(r"lib[\w.+-]+\.so\.\d+ is missing", d), d  # names the library, e.g. libcublasLt.so.13


CUDA_REQUEST = """
import edgeclf, edgeclf.gpu as g
from edgeclf.session import ProviderError
g.preload_cuda_libraries()
d = g.diagnose_cuda()
try:
    clf = edgeclf.load('albert-imdb', providers='cuda')
except ProviderError as exc:
    assert d is not None, ('CUDA looked usable, yet', exc)
    print('ERROR', exc)
else:
    assert d is None and clf.providers[0] == 'CUDAExecutionProvider', (d, clf.providers)
    print('CUDA')
"""


@pytest.mark.slow
@pytest.mark.network
def test_cuda_request_without_cuda_is_an_error(venv, tmp_path):
    """providers='cuda' where CUDA cannot start raises ProviderError (no silent CPU run)."""
    r = py(venv, CUDA_REQUEST, tmp_path)
    assert r.stdout.splitlines()[-1].startswith(("ERROR", "CUDA")), r.stdout


@pytest.mark.slow
@pytest.mark.network
def test_cuda_error_carries_the_diagnosis(venv, tmp_path):
    r = py(venv, CUDA_REQUEST.replace("print('ERROR', exc)", "assert d in str(exc), (d, str(exc))"), tmp_path)
    assert r.returncode == 0


def _predict_cuda(venv: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = [venv / "bin" / "edgeclf", "predict", CSV, "--model", "albert-imdb", "--provider", "cuda"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=600)


@pytest.mark.slow
@pytest.mark.network
def test_predict_cuda_without_cuda_fails_clearly(venv, tmp_path):
    diagnosis = py(
        venv, "import edgeclf.gpu as g; g.preload_cuda_libraries(); print(g.diagnose_cuda())", tmp_path
    )
    if diagnosis.stdout.strip() == "None":
        pytest.skip("CUDA works on this machine")
    r = _predict_cuda(venv, tmp_path)
    assert r.returncode == 2 and "edgeclf: error:" in r.stderr and "CUDA" in r.stderr, (
        r.returncode,
        r.stderr,
    )
    assert "test_neg_4402" not in r.stdout, r.stdout  # no CSV row was written


@pytest.mark.slow
@pytest.mark.network
def test_predict_cuda_without_cuda_keeps_stdout_clean(venv, tmp_path):
    diagnosis = py(
        venv, "import edgeclf.gpu as g; g.preload_cuda_libraries(); print(g.diagnose_cuda())", tmp_path
    )
    if diagnosis.stdout.strip() == "None":
        pytest.skip("CUDA works on this machine")
    assert _predict_cuda(venv, tmp_path).stdout == ""


def test_cpu_onnxruntime_diagnosis_here():
    """This interpreter's own install (onnxruntime, CPU): the diagnosis says to install edgeclf-gpu."""
    import edgeclf.gpu as g

    if g.installed_version("onnxruntime-gpu"):
        pytest.skip("this interpreter has onnxruntime-gpu")
    d = g.diagnose_cuda()
    assert d is not None and "CPU-only build" in d and "pip install edgeclf-gpu" in d, d


@pytest.mark.slow
@pytest.mark.network
def test_cuda_extra_resolves_to_nvidia_packages(venv, dist, tmp_path):
    """`pip install 'edgeclf-gpu[cuda]'` brings CUDA + cuDNN from pip (resolved, not downloaded)."""
    report = tmp_path / "report.json"
    timed(
        "pip install --dry-run 'edgeclf-gpu[cuda]'",
        venv / "bin" / "pip",
        "install",
        "--dry-run",
        "-q",
        "--report",
        report,
        f"{gpu_wheel(dist)}[cuda]",
    )
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    for part in ("nvidia-cuda-runtime", "nvidia-cublas", "nvidia-cudnn"):
        assert any(n.startswith(part) for n in names), (part, names)
    assert "onnxruntime" not in names, names


@pytest.mark.slow
@pytest.mark.network
def test_both_installed_is_named_and_the_fix_works(venv, dist, tmp_path):
    """`pip install onnxruntime` into the edgeclf-gpu venv (what any package needing it does): caught."""
    pip = venv / "bin" / "pip"
    timed("pip install onnxruntime (into the gpu venv)", pip, "install", "-q", "onnxruntime")
    d = py(venv, "import edgeclf.gpu as g; print(g.diagnose_cuda())", tmp_path).stdout
    assert "onnxruntime" in d and "onnxruntime-gpu" in d and "both installed" in d, d
    fix = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install --force-reinstall edgeclf-gpu"
    assert fix in d, d
    # the fix as printed, with the local wheel standing in for the (unpublished) name
    timed(
        "the fix: pip uninstall -y onnxruntime onnxruntime-gpu",
        pip,
        "uninstall",
        "-y",
        "onnxruntime",
        "onnxruntime-gpu",
    )
    timed(
        "the fix: pip install --force-reinstall edgeclf-gpu",
        pip,
        "install",
        "-q",
        "--force-reinstall",
        gpu_wheel(dist),
    )
    test_fresh_venv_has_onnxruntime_gpu_only(venv, tmp_path)
    d = py(venv, "import edgeclf.gpu as g; print(g.diagnose_cuda())", tmp_path).stdout
    assert "both installed" not in d, d


def _script():
    spec = importlib.util.spec_from_file_location("build_edgeclf_gpu", BUILD)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_rewrite_changes_only_name_and_onnxruntime():
    tomllib = pytest.importorskip("tomllib", reason="the build script needs Python >= 3.11")
    script = _script()
    text = (ROOT / "pyproject.toml").read_text()
    old, new = tomllib.loads(text), tomllib.loads(script.rewrite_pyproject(text))
    assert new["project"]["name"] == "edgeclf-gpu" and new["project"]["version"] == old["project"]["version"]
    assert script.GPU_REQUIREMENT in new["project"]["dependencies"]
    assert not [d for d in new["project"]["dependencies"] if re.match(r"onnxruntime($|[<>=!~ ;])", d)]
    assert new["project"]["optional-dependencies"]["cuda"] == ["onnxruntime-gpu[cuda,cudnn]>=1.21,<2"]
    assert new["tool"] == old["tool"] and new["build-system"] == old["build-system"]


def test_rewrite_refuses_what_it_cannot_map():
    tomllib = pytest.importorskip("tomllib", reason="the build script needs Python >= 3.11")
    script = _script()
    text = (ROOT / "pyproject.toml").read_text()
    line = next(x for x in text.splitlines() if re.match(r'\s*"onnxruntime[<>=!~]', x))
    with pytest.raises(SystemExit, match="exactly one onnxruntime"):
        script.rewrite_pyproject(text.replace(line, ""))  # no onnxruntime requirement
    with pytest.raises(SystemExit, match="exactly one onnxruntime"):
        script.rewrite_pyproject(text.replace(line, line + "\n" + line.replace(">=", "<")))  # two
    with pytest.raises(SystemExit, match="name"):
        script.rewrite_pyproject(text.replace('name = "edgeclf"', 'name = "other"'))
    assert tomllib.loads(text)["project"]["name"] == "edgeclf"
