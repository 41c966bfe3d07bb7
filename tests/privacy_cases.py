"""The privacy cases: every way users run edgeclf, and the detector checks.

One module for the tests (tests/test_privacy_syscalls.py) and the report
(benchmarks/reliability.py, docs/reliability.md), so what the tests prove and
what the report counts cannot drift apart. pytest is not imported here.

- :data:`CASES`: commands users run, each under ``strace -f`` in a fresh
  :class:`~tests.syscalls.Sandbox` (empty HOME, XDG_CACHE_HOME, TMPDIR):
  :func:`run_case` returns an :class:`Outcome` whose ``problems`` must be
  empty: no inet socket, no file outside the requested output and TMPDIR,
  HOME and the cache still empty.
- Detector scenarios, each on the real thing: :func:`opt_in_telemetry`
  (onnxruntime's own device id and event database),
  :func:`imported_first` (the documented limit, and its remedy),
  :func:`native_socket` (a socket from C that a Python patch misses),
  :func:`long_run` (onnxruntime's upload starts ~10 s in: an opted-in
  process shows it, a default one kept alive longer does not),
  :func:`hub_lookup` (transformers goes online for a Hub name unless
  ``edgeclf.export.hub_offline()`` ran first).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from .syscalls import Sandbox, Trace, run_traced, traced

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "checkpoints" / "albert-imdb"
TELEMETRY_DIR = Path("Microsoft", "DeveloperTools", ".onnxruntime")
OPT_IN = {"EDGECLF_ALLOW_ORT_TELEMETRY": "1"}
#: onnxruntime 1.32 resolves its upload host ~10 s after start (measured 9.3-9.9 s under strace)
TELEMETRY_WAIT_S = 60
MODELS = ("keras-imdb", "albert-imdb", "albert-zh-rumor")


def runtime_only_python() -> str | None:
    """The runtime-only install (``pip install .``) CI makes, named by ``EDGECLF_RUNTIME_PYTHON``."""
    path = os.environ.get("EDGECLF_RUNTIME_PYTHON")
    return path if path and Path(path).is_file() else None


def edgeclf_cmd(python: str) -> list[str]:
    """The console script beside the interpreter (how users run it), else ``python -m edgeclf``."""
    script = Path(python).parent / "edgeclf"
    return [str(script)] if script.is_file() else [python, "-m", "edgeclf"]


def predict_script(model: str) -> str:
    return (
        "import edgeclf, json\n"
        f"preds = edgeclf.load({model!r}).predict(['A moving, beautifully acted film.', 'Dull and far too long.'])\n"
        "print(json.dumps({'labels': [p.label for p in preds], 'state': edgeclf._ort.telemetry_state()}))\n"
    )


# ---------------------------------------------------------------- the commands


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[str], list[str]]  # interpreter -> command line
    inputs: tuple[str, ...] = ()  # repo files copied into the working directory
    outputs: tuple[str, ...] = ()  # files it must write (relative to the working directory)
    allowed: tuple[str, ...] = ()  # more it may write (fnmatch patterns, relative), e.g. atomic temp files
    needs: tuple[str, ...] = ()  # modules (skip without them)
    runtime_only_too: bool = False  # also run with the runtime-only install
    loopback_probe: bool = False  # urllib3's import-time ::1 bind is tolerated (transformers)
    timeout: float = 300
    check_stdout: Callable[[str], bool] = lambda out: True

    def missing(self) -> str | None:
        for m in self.needs:
            if importlib.util.find_spec(m) is None:
                return f"needs {m}"
        if "export" in self.name and not (CHECKPOINT / "model.safetensors").is_file():
            return "checkpoints/albert-imdb is not in this checkout"
        return None


def _api(model: str) -> Case:
    def check(out: str) -> bool:
        data = json.loads(out)
        return len(data["labels"]) == 2 and data["state"]["guaranteed_off"] is True

    return Case(
        f"python: edgeclf.load({model!r}).predict(...)",
        lambda py: [py, "-c", predict_script(model)],
        runtime_only_too=True,
        check_stdout=check,
    )


_PROFILE = [
    "profile",
    "-m",
    "albert-imdb",
    "--variants",
    "int8",
    "--threads",
    "1",
    "--batch-sizes",
    "1",
    "--seq-lens",
    "64",
    "--budget",
    "0.2",
    "--min-runs",
    "3",
    "--cold-runs",
    "1",
    "--json",
    "profile.json",
    "--html",
    "report.html",
    "-q",
]

CASES: tuple[Case, ...] = (
    *(_api(m) for m in MODELS),
    Case(
        "edgeclf predict reviews.csv -o out.csv",
        lambda py: [*edgeclf_cmd(py), "predict", "reviews.csv", "-o", "out.csv", "-q"],
        inputs=("examples/reviews.csv",),
        outputs=("out.csv",),
        allowed=(".out.csv.*.tmp",),  # the atomic write: a hidden sibling renamed onto out.csv
        runtime_only_too=True,
    ),
    Case(
        "edgeclf predict reviews.csv --model albert-imdb (stdout)",
        lambda py: [*edgeclf_cmd(py), "predict", "reviews.csv", "--model", "albert-imdb", "-q"],
        inputs=("examples/reviews.csv",),
        check_stdout=lambda out: len(out.splitlines()) == 9,
    ),
    Case("edgeclf models", lambda py: [*edgeclf_cmd(py), "models"]),
    Case("edgeclf models --json", lambda py: [*edgeclf_cmd(py), "models", "--json"]),
    *(Case(f"edgeclf info {m}", lambda py, m=m: [*edgeclf_cmd(py), "info", m]) for m in MODELS),
    Case(
        "edgeclf profile -m albert-imdb ... --json profile.json --html report.html (with cold starts)",
        lambda py: [*edgeclf_cmd(py), *_PROFILE],
        outputs=("profile.json", "report.html"),
        allowed=(".profile.json.*.tmp", ".report.html.*.tmp"),  # the atomic writes, as for out.csv
        needs=("matplotlib",),
    ),
    Case(
        "edgeclf export albert checkpoints/albert-imdb --out bundle --no-int8 --max-length 64",
        lambda py: [
            *edgeclf_cmd(py),
            *f"export albert {CHECKPOINT} --out bundle --no-int8 --max-length 64".split(),
        ],
        outputs=("bundle",),
        needs=("torch", "transformers", "onnx"),
        loopback_probe=True,
        timeout=900,
    ),
)


@dataclass
class Outcome:
    case: str
    python: str  # "venv" or "runtime-only"
    returncode: int
    seconds: float
    inet_sockets: int
    loopback_probes: int
    network: list[str]
    files_outside: list[str]
    leftovers: list[str]
    temp_files: list[str]
    writes: list[str]
    missing_outputs: list[str]
    stdout_ok: bool
    stderr: str = ""
    trace: Trace | None = field(default=None, repr=False)

    @property
    def problems(self) -> list[str]:
        out = []
        if self.returncode != 0:
            out.append(f"exit {self.returncode}: {self.stderr[-2000:]}")
        out += [f"network: {line}" for line in self.network]
        out += [f"file outside the output and TMPDIR: {p}" for p in self.files_outside]
        out += [f"left in HOME / XDG_CACHE_HOME: {p}" for p in self.leftovers]
        out += [f"output not written: {p}" for p in self.missing_outputs]
        if not self.stdout_ok:
            out.append("unexpected stdout")
        return out


def run_case(case: Case, root: Path, python: str, label: str = "venv") -> Outcome:
    box = Sandbox.create(root)
    for rel in case.inputs:
        shutil.copy(REPO / rel, box.work / Path(rel).name)
    started = time.perf_counter()
    t = run_traced(case.argv(python), box, timeout=case.timeout)
    seconds = time.perf_counter() - started
    allowed = [box.work / o for o in case.outputs] + [str(box.work / a) for a in case.allowed]
    try:
        stdout_ok = t.returncode != 0 or bool(case.check_stdout(t.stdout))
    except (ValueError, KeyError):
        stdout_ok = False
    return Outcome(
        case=case.name,
        python=label,
        returncode=t.returncode,
        seconds=seconds,
        inet_sockets=len(t.inet_sockets),
        loopback_probes=len(t.loopback_probes()),
        network=[ev.line for ev in t.network_violations(allow_loopback_probe=case.loopback_probe)],
        files_outside=sorted({ev.path for ev in t.writes_outside(allowed)}),
        leftovers=box.leftovers(),
        temp_files=box.temp_files(),
        writes=sorted({os.path.relpath(ev.path, box.root) for ev in t.writes}),
        missing_outputs=[o for o in case.outputs if not (box.work / o).exists()],
        stdout_ok=stdout_ok,
        stderr=t.stderr,
        trace=t,
    )


# ---------------------------------------------------------------- the detector, on the real thing


@dataclass
class Detection:
    """A scenario in which the checks must fire (or, for the control, stay quiet)."""

    name: str
    fired: bool
    detail: str
    ok: bool
    extra: dict[str, object] = field(default_factory=dict)


def ort_version(python: str = sys.executable) -> str:
    import subprocess

    r = subprocess.run(
        [python, "-c", "import onnxruntime; print(onnxruntime.__version__)"], capture_output=True, text=True
    )
    return r.stdout.strip() or "?"


def opt_in_telemetry(root: Path, python: str = sys.executable) -> Detection:
    """With the opt-in, onnxruntime writes its device id and event database, and the checks see them."""
    box = Sandbox.create(root)
    t = run_traced([python, "-c", predict_script("keras-imdb")], box, extra_env=OPT_IN)
    written = sorted({Path(ev.path).name for ev in t.writes_outside()})
    leftovers = [os.path.relpath(p, box.root) for p in box.leftovers()]
    fired = {"deviceid", "onnxruntime.db"} <= set(written) and bool(leftovers)
    state = json.loads(t.stdout)["state"] if t.returncode == 0 else {}
    return Detection(
        "EDGECLF_ALLOW_ORT_TELEMETRY=1: python predict",
        fired,
        f"files written outside TMPDIR: {', '.join(written)}; left in the fresh dirs: {', '.join(leftovers)}; "
        f"TMPDIR: {', '.join(box.temp_files()) or 'nothing'}",
        fired and state.get("opted_in") is True and state.get("guaranteed_off") is False,
        {"written": written, "leftovers": leftovers, "trace": t, "box": box},
    )


IMPORTED_FIRST = (
    "import warnings\nwarnings.simplefilter('always')\n"
    "import onnxruntime\n" + predict_script("keras-imdb") + "import edgeclf\nedgeclf.load('albert-imdb')\n"
)


def imported_first(root: Path, python: str = sys.executable) -> tuple[Detection, Detection]:
    """Host imported onnxruntime before edgeclf: one warning, telemetry files (the documented limit);
    with ORT_DISABLE_TELEMETRY=1 set before Python starts (the remedy the warning names): clean."""
    box = Sandbox.create(root / "first")
    t = run_traced([python, "-c", IMPORTED_FIRST], box)
    warnings = t.stderr.count("OrtTelemetryWarning")
    state = json.loads(t.stdout.splitlines()[0])["state"] if t.returncode == 0 else {}
    device_id = (box.cache / TELEMETRY_DIR / "deviceid").is_file()
    limit = Detection(
        "host imported onnxruntime first (no env var)",
        device_id,
        f"{warnings} OrtTelemetryWarning naming ORT_DISABLE_TELEMETRY=1; device id written: {device_id}; "
        f"telemetry_state()['guaranteed_off'] = {state.get('guaranteed_off')}",
        t.returncode == 0
        and warnings == 1
        and "ORT_DISABLE_TELEMETRY=1" in t.stderr
        and state.get("guaranteed_off") is False
        and device_id,
    )
    box2 = Sandbox.create(root / "remedy")
    t2 = run_traced([python, "-c", IMPORTED_FIRST], box2, extra_env={"ORT_DISABLE_TELEMETRY": "1"})
    state2 = json.loads(t2.stdout.splitlines()[0])["state"] if t2.returncode == 0 else {}
    clean = not t2.network_violations() and not t2.writes_outside() and not box2.leftovers()
    remedy = Detection(
        "host imported onnxruntime first, ORT_DISABLE_TELEMETRY=1 set before start",
        not clean,
        f"warnings: {t2.stderr.count('OrtTelemetryWarning')}; files outside TMPDIR: "
        f"{len(t2.writes_outside())}; inet sockets: {len(t2.inet_sockets)}",
        t2.returncode == 0
        and clean
        and "OrtTelemetryWarning" not in t2.stderr
        and state2.get("guaranteed_off") is True,
    )
    return limit, remedy


NATIVE_SOCKET = """
import ctypes, socket
def no_network(*a, **k):
    raise AssertionError('python-level socket used')
socket.socket = no_network            # a Python-level patch: blind to sockets opened from native code
socket.create_connection = no_network
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)   # what native code (onnxruntime) does
assert fd >= 0
libc.close(fd)
print('the python-level patch saw nothing')
"""


def native_socket(root: Path, python: str = sys.executable) -> Detection:
    box = Sandbox.create(root)
    t = run_traced([python, "-c", NATIVE_SOCKET], box)
    missed = t.returncode == 0 and "saw nothing" in t.stdout
    fired = [ev.detail for ev in t.inet_sockets] == ["AF_INET"] and bool(t.network_violations())
    return Detection(
        "socket(AF_INET) from C, under a Python socket.socket patch",
        fired,
        f"Python patch noticed: {not missed}; strace saw: {len(t.inet_sockets)} inet socket",
        missed and fired,
        {"trace": t},
    )


LONG_RUN = predict_script("keras-imdb") + "import time\ntime.sleep(600)\n"


def long_run(root: Path, python: str = sys.executable, margin_s: float = 5) -> tuple[Detection, Detection]:
    """Two idle processes after a prediction: opted-in (must go online ~10 s in) and default (must not)."""
    quiet, chatty = Sandbox.create(root / "default"), Sandbox.create(root / "opt-in")
    started = time.monotonic()
    seen_after = None
    with (
        traced([python, "-c", LONG_RUN], quiet, files=False) as default,
        traced([python, "-c", LONG_RUN], chatty, extra_env=OPT_IN, files=False) as opted,
    ):
        deadline = started + TELEMETRY_WAIT_S
        while time.monotonic() < deadline:
            if opted.snapshot().inet_sockets:
                seen_after = time.monotonic() - started
                break
            time.sleep(0.5)
        if seen_after is not None:
            time.sleep(margin_s)
    alive = time.monotonic() - started
    on, off = opted.trace, default.trace
    assert on is not None and off is not None
    dns = [ev.detail for ev in on.egress]
    fired = bool(on.network_violations())
    opt = Detection(
        "EDGECLF_ALLOW_ORT_TELEMETRY=1: idle process after a prediction",
        fired,
        (
            f"first inet socket {seen_after:.1f} s after start; egress: {', '.join(sorted(set(dns)))}"
            if seen_after is not None
            else f"no network call within {TELEMETRY_WAIT_S} s"
        ),
        fired and any(d.endswith(":53") or "name service" in d for d in dns),
        {"seen_after": seen_after},
    )
    clean = not off.inet_sockets and not off.network_violations() and not quiet.leftovers()
    default_ = Detection(
        "default: the same process, kept alive alongside",
        not clean,
        f"alive {alive:.0f} s; inet sockets: {len(off.inet_sockets)}; left in HOME/cache: {len(quiet.leftovers())}",
        clean and seen_after is not None,
        {"alive": alive},
    )
    return opt, default_


HUB_LOOKUP = """
import sys
if sys.argv[1] == 'offline':
    from edgeclf.export import hub_offline
    hub_offline()
import transformers
try:
    transformers.AlbertConfig.from_pretrained('albert/albert-base-v2')
except OSError as exc:
    print('refused:', type(exc).__name__)
"""


def hub_lookup(root: Path, python: str = sys.executable) -> tuple[Detection, Detection]:
    """A Hub name, not a local directory: refused offline; without hub_offline() transformers goes online.

    Both run at once (each pays the transformers import); network only is
    traced (HOME and the cache are checked on disk).
    """
    box, online = Sandbox.create(root / "offline"), Sandbox.create(root / "online")
    with traced([python, "-c", HUB_LOOKUP, "online"], online, files=False) as proc:
        t = run_traced([python, "-c", HUB_LOOKUP, "offline"], box, timeout=300, files=False)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.popen.poll() is None:
            if proc.snapshot().network_violations(allow_loopback_probe=True):
                break
            time.sleep(0.2)
    assert proc.trace is not None
    off_net = t.network_violations(allow_loopback_probe=True)
    on_net = proc.trace.network_violations(allow_loopback_probe=True)
    offline = Detection(
        "export: hub_offline(), then a Hub name",
        bool(off_net),
        f"{'refused offline' if 'refused' in t.stdout else 'NOT refused'}; network calls: {len(off_net)}; "
        f"left in HOME/cache: {len(box.leftovers())}",
        t.returncode == 0 and "refused" in t.stdout and not off_net and not box.leftovers(),
    )
    hub = Detection(
        "export: the same without hub_offline()",
        bool(on_net),
        f"network calls seen: {len(on_net)} (first: {on_net[0].call} {on_net[0].detail})"
        if on_net
        else "none",
        bool(on_net),
    )
    return offline, hub


def ci_markers(root: Path, python: str = sys.executable) -> Detection:
    """Why the sandbox's environment is an allowlist: under ``CI=true`` onnxruntime writes no
    telemetry even when opted in, so a check that passed CI's variables on could not fail there."""
    from .syscalls import CI_MARKERS

    with mock.patch.dict(os.environ, dict.fromkeys(CI_MARKERS, "true")):
        leaked = sorted(set(CI_MARKERS) & set(Sandbox.create(root / "env").env()))
    box = Sandbox.create(root / "box")
    t = run_traced([python, "-c", predict_script("keras-imdb")], box, extra_env={**OPT_IN, "CI": "true"})
    quiet = t.returncode == 0 and not box.leftovers() and not t.writes_outside()
    return Detection(
        "CI=true set, telemetry opted in: onnxruntime stays quiet by itself",
        quiet,
        f"files written outside TMPDIR: {len(t.writes_outside())}; CI variables reaching a sandboxed "
        f"command: {', '.join(leaked) or 'none'}",
        quiet and not leaked,
    )


def all_detections(root: Path, with_export: bool) -> list[Detection]:
    out = [opt_in_telemetry(root / "opt-in"), *imported_first(root / "imported-first")]
    out.append(ci_markers(root / "ci-markers"))
    out.append(native_socket(root / "native"))
    out.extend(long_run(root / "long"))
    if with_export:
        out.extend(hub_lookup(root / "hub"))
    return out


def interpreters() -> Sequence[tuple[str, str]]:
    pythons = [("venv", sys.executable)]
    runtime_only = runtime_only_python()
    if runtime_only:
        pythons.append(("runtime-only", runtime_only))
    return pythons
