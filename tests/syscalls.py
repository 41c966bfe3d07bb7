"""What a process really does to the network and the file system, seen by ``strace``.

A Python-level patch (replacing ``socket.socket``) cannot see native code:
onnxruntime's telemetry opens its sockets and files from C++. This helper
runs a command under ``strace -f`` (every thread and child process) and
parses the system calls, so a test can assert on what happened at the level
where it happens.

API (for the privacy tests and any later test, e.g. ``edgeclf serve``)::

    from tests.syscalls import Sandbox, need_strace, run_traced, traced

    need_strace()                                  # skips the test where strace is absent
    box = Sandbox.create(tmp_path)                 # fresh empty HOME, XDG_CACHE_HOME, TMPDIR, cwd
    t = run_traced([sys.executable, "-m", "edgeclf", "models"], box)
    assert t.returncode == 0, t.stderr
    t.assert_private(allowed=[box.work / "out.csv"])   # no inet socket, no file outside allowed + TMPDIR
    assert box.leftovers() == []                   # HOME and XDG_CACHE_HOME still empty

    # a long-running server: start, talk to it from the test, stop, then check
    with traced([..., "serve", "--port", str(port)], box) as proc:
        ...                                        # requests from the test process (not traced)
    t = proc.trace                                 # stopped with SIGTERM (``stop_signal=``)
    t.assert_private(listen=[("127.0.0.1", port)]) # only its own listening socket
    assert t.listening == [("127.0.0.1", port)]    # ... and it did listen there

(``tests/privacy_cases.py`` builds the privacy tests and the report's
section on this.)

``Sandbox.create(root)``
    makes ``home``, ``cache``, ``tmp`` and ``work`` under ``root``; ``env()``
    is a user's login environment (PATH, locale, TERM, ...: an allowlist,
    nothing else of the test runner's) with HOME, XDG_CACHE_HOME and TMPDIR
    pointed at them, so a test sees what edgeclf itself does (pass
    ``extra_env=`` to set more: ``EDGECLF_ALLOW_ORT_TELEMETRY``, ...), and
    ``PYTHONDONTWRITEBYTECODE=1``: the interpreter's bytecode cache is
    Python's, not edgeclf's, and appears only on a first run. CI's own
    variables never pass: onnxruntime writes no telemetry when it sees
    ``CI`` and the like (:data:`CI_MARKERS`).
    ``leftovers()`` lists every path under HOME and XDG_CACHE_HOME.

``run_traced(argv, box, *, extra_env=None, timeout=300, input=None, files=True) -> Trace``
    runs ``argv`` in ``box.work`` under strace and returns the parsed trace.
    ``files=False`` traces network calls only (much faster for a process
    that imports a big framework; check HOME with ``leftovers()`` instead).

``traced(argv, box, *, extra_env=None, stop_signal=SIGTERM, files=True)``
    a context manager for servers: yields a handle with ``.pid`` (the traced
    process, not strace), ``.snapshot()`` (the trace so far, to wait for an
    event) and, after the block, ``.trace``.

``strace_problem()`` / ``need_strace()``
    why strace cannot run here (None when it can) / skip the calling test.

``Trace``
    ``returncode``, ``stdout``, ``stderr``, ``raw`` (strace's text) and:

    - ``inet_sockets``: every ``socket(AF_INET|AF_INET6, ...)`` call,
      attempted or successful (an attempt is already the threat).
    - ``egress``: every ``connect``/``sendto``/``sendmsg`` to an AF_INET or
      AF_INET6 address, and every connection to systemd-resolved's socket:
      a DNS lookup is network use too (nscd is not counted: it also answers
      user-name lookups, e.g. torch asking for the user's name).
    - ``listening``: ``(host, port)`` of each inet socket that was bound and
      ``listen()``-ed on.
    - ``loopback_probes()``: inet sockets only bound to 127.0.0.1 / ::1 and
      never listening (urllib3 binds ``::1`` at import to test IPv6).
    - ``writes``: every successful call that creates, writes, renames,
      links or removes a file or directory, as ``FsEvent(pid, call, path)``
      with an absolute path (``open*`` with O_CREAT/O_WRONLY/O_RDWR/O_TRUNC/
      O_TMPFILE, ``creat``, ``mkdir*``, ``mknod*``, ``rename*`` (both
      names), ``link*``, ``symlink*``, ``unlink*``, ``rmdir``, ``truncate``).
    - ``writes_outside(allowed)``: the ``writes`` whose path is not under
      the sandbox's TMPDIR, a character device such as ``/dev/null``, or an
      ``allowed`` entry (a path: itself and anything below it; a string
      with ``*``/``?``: an ``fnmatch`` pattern on the absolute path).
    - ``network_violations(listen=(), *, allow_loopback_probe=False)``:
      inet sockets and egress, except sockets bound and listening on an
      address in ``listen`` (and loopback probes when allowed).
    - ``assert_private(allowed=(), listen=(), *, allow_loopback_probe=False)``:
      both checks, with the offending strace lines in the message.

Limits: paths come from strace's ``-y`` decoding of fds (``AT_FDCWD``
included); the non-``*at`` calls (``mkdir``, ``rename`` ...) with relative
paths are resolved against each process's last ``chdir``/``fchdir``. Reads
are not reported (reading is not what is promised away). strace slows
file-heavy start-ups several times; the checks are about what happens, not
how fast.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

TRACE_SET = "trace=%file,%network,%process,fchdir"
#: network only (much cheaper: most of a Python start-up's system calls are file look-ups)
TRACE_NETWORK = "trace=%network,%process"
#: What a traced child inherits: a user's login environment, nothing of the test runner's. Not a
#: denylist: onnxruntime 1.32 reads CI, GITHUB_ACTIONS, TF_BUILD, JENKINS_URL, GITLAB_CI, TRAVIS,
#: CIRCLECI, BUILDKITE, APPVEYOR, TEAMCITY_VERSION, CODEBUILD_BUILD_ID, BITBUCKET_BUILD_NUMBER,
#: SYSTEM_TEAMFOUNDATIONCOLLECTIONURI and ORT_RUNNING_UNIT_TESTS (seen with an LD_PRELOAD getenv
#: logger) and writes no telemetry when one is set, so a CI run that passed them on would prove
#: "no telemetry" without edgeclf doing anything; HF_HUB_OFFLINE and friends, which in-process
#: tests of `edgeclf export` set in pytest's own environment, would do the same for the Hub.
_INHERITED_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "USER", "LOGNAME", "SHELL")
_INHERITED_PREFIXES = ("LC_",)
#: checked by tests/test_privacy_syscalls.py: none of these may reach a traced child
CI_MARKERS = (
    "CI",
    "GITHUB_ACTIONS",
    "TF_BUILD",
    "JENKINS_URL",
    "GITLAB_CI",
    "TRAVIS",
    "CIRCLECI",
    "BUILDKITE",
    "APPVEYOR",
    "TEAMCITY_VERSION",
    "CODEBUILD_BUILD_ID",
    "BITBUCKET_BUILD_NUMBER",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
    "ORT_RUNNING_UNIT_TESTS",
)
#: host-name lookups through a local daemon (nscd is left out: it serves passwd lookups too)
NAME_SERVICE_SOCKETS = ("/run/systemd/resolve/",)
LOOPBACK = ("127.0.0.1", "::1")


def strace_path() -> str | None:
    return shutil.which("strace")


def strace_problem() -> str | None:
    """Why strace cannot be used here, or None when it can."""
    path = strace_path()
    if path is None:
        return "strace is not installed (apt-get install strace); CI installs it"
    probe = subprocess.run([path, "-f", "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        return f"strace cannot trace here (ptrace not permitted?): {probe.stderr.decode().strip()}"
    return None


def need_strace() -> str:
    """The strace binary, or skip the calling test (CI installs it: Debian package ``strace``).

    With ``EDGECLF_REQUIRE_STRACE=1`` (set by .ci/run) a missing or unusable
    strace fails the test instead: CI must run these checks, not skip them.
    """
    problem = strace_problem()
    if problem is not None:
        import pytest

        if os.environ.get("EDGECLF_REQUIRE_STRACE") == "1":
            pytest.fail(f"EDGECLF_REQUIRE_STRACE=1 but {problem}")
        pytest.skip(problem)
    return strace_path() or "strace"


# ---------------------------------------------------------------- sandbox


@dataclass(frozen=True)
class Sandbox:
    root: Path
    home: Path
    cache: Path
    tmp: Path
    work: Path

    @classmethod
    def create(cls, root: Path) -> Sandbox:
        root = Path(root).resolve()
        dirs = {name: root / name for name in ("home", "cache", "tmp", "work")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=False)
        return cls(root=root, **dirs)

    def env(self, extra_env: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k in _INHERITED_ENV or k.startswith(_INHERITED_PREFIXES)
        }
        env.update(
            HOME=str(self.home),
            XDG_CACHE_HOME=str(self.cache),
            TMPDIR=str(self.tmp),
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.update(extra_env or {})
        return env

    def leftovers(self) -> list[str]:
        """Every path under HOME and XDG_CACHE_HOME (both must stay empty)."""
        return sorted(str(p) for d in (self.home, self.cache) for p in d.rglob("*"))

    def temp_files(self) -> list[str]:
        return sorted(str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*"))


# ---------------------------------------------------------------- parsed trace


@dataclass(frozen=True)
class FsEvent:
    pid: int
    call: str
    path: str
    line: str


@dataclass(frozen=True)
class NetEvent:
    pid: int
    call: str
    detail: str
    line: str


@dataclass
class Trace:
    returncode: int
    stdout: str
    stderr: str
    raw: str
    sandbox: Sandbox
    writes: list[FsEvent] = field(default_factory=list)
    inet_sockets: list[NetEvent] = field(default_factory=list)
    egress: list[NetEvent] = field(default_factory=list)
    listening: list[tuple[str, int]] = field(default_factory=list)
    #: inode of each successful inet socket (None where strace could not name it)
    _inet_inodes: list[tuple[str | None, NetEvent]] = field(default_factory=list)
    _listening_inodes: dict[str, tuple[str, int]] = field(default_factory=dict)
    _bound: dict[str, tuple[str, int]] = field(default_factory=dict)

    def writes_outside(self, allowed: Iterable[str | os.PathLike[str]] = ()) -> list[FsEvent]:
        roots: list[str] = [str(self.sandbox.tmp)]
        patterns: list[str] = []
        for a in allowed:
            text = os.fspath(a)
            (patterns if any(c in text for c in "*?[") else roots).append(text)
        bad = []
        transient = self.transient_semaphores()
        for ev in self.writes:
            if ev.path in transient:
                continue
            if any(ev.path == r or ev.path.startswith(r.rstrip("/") + "/") for r in roots):
                continue
            if any(fnmatch.fnmatchcase(ev.path, p) for p in patterns):
                continue
            if _is_char_device(ev.path):  # /dev/null, /dev/tty, a pty
                continue
            bad.append(ev)
        return bad

    def transient_semaphores(self) -> set[str]:
        """POSIX named semaphores (``/dev/shm/sem.*``) that the process unlinked again.

        glibc's ``sem_open`` creates one as a file in /dev/shm, and
        multiprocessing's SemLock unlinks it at once; joblib does this at
        import (transformers imports it where scikit-learn is installed).
        An IPC handle that leaves nothing behind, unlike one never unlinked.
        """
        unlinked = {ev.path for ev in self.writes if ev.call.startswith("unlink")}
        return {p for p in unlinked if fnmatch.fnmatchcase(p, "/dev/shm/sem.*")}

    def loopback_probes(self) -> list[NetEvent]:
        """Inet sockets only bound to a loopback address, never listening (egress is separate).

        urllib3 creates one at import (binds ``::1`` to learn whether IPv6
        works), so every process that imports transformers has it.
        """
        return [
            ev
            for inode, ev in self._inet_inodes
            if inode in self._bound
            and self._bound[inode][0] in LOOPBACK
            and inode not in self._listening_inodes
        ]

    def network_violations(
        self, listen: Sequence[tuple[str, int]] = (), *, allow_loopback_probe: bool = False
    ) -> list[NetEvent]:
        allowed = {(h, int(p)) for h, p in listen}
        probes = {id(ev) for ev in self.loopback_probes()} if allow_loopback_probe else set()
        bad = list(self.egress)
        for inode, ev in self._inet_inodes:
            if id(ev) in probes:
                continue
            if inode is None or self._listening_inodes.get(inode) not in allowed:
                bad.append(ev)
        bad.extend(ev for ev in self.inet_sockets if ev.detail == "failed")
        return bad

    def assert_private(
        self,
        allowed: Iterable[str | os.PathLike[str]] = (),
        listen: Sequence[tuple[str, int]] = (),
        *,
        allow_loopback_probe: bool = False,
    ) -> None:
        net = self.network_violations(listen, allow_loopback_probe=allow_loopback_probe)
        files = self.writes_outside(allowed)
        problems = [f"network: {ev.line}" for ev in net] + [f"file: {ev.path}  <- {ev.line}" for ev in files]
        assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} in all)"


def _is_char_device(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


# ---------------------------------------------------------------- parsing

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^([a-z_0-9]+)\((.*)\)\s+=\s+(-?\d+|\?)(?:<([^>]*)>)?(.*)$")
_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FD = re.compile(r"^(-?\d+|AT_FDCWD)(?:<([^>]*)>)?$")
_INODE = re.compile(r"socket:\[(\d+)\]")

_WRITE_FLAGS = ("O_CREAT", "O_WRONLY", "O_RDWR", "O_TRUNC", "O_TMPFILE")


def _split_args(args: str) -> list[str]:
    """Top-level comma split of strace's argument text (strings, braces, brackets)."""
    out, depth, cur, in_str, esc = [], 0, [], False, False
    for ch in args:
        if in_str:
            cur.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[(<":
            depth += 1
        elif ch in "}])>":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur).strip())
    return out


def _unquote(arg: str) -> str | None:
    m = _STR.search(arg)
    if m is None:
        return None
    return m.group(1).encode("latin-1", "backslashreplace").decode("unicode_escape", "replace")


def _join_unfinished(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    pending: dict[int, str] = {}
    for line in lines:
        m = _LINE.match(line)
        if not m:
            continue
        pid, rest = int(m.group(1)), m.group(2)
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            continue
        resumed = re.match(r"^<\.\.\. [a-z_0-9]+ resumed>\s?(.*)$", rest)
        if resumed:
            head = pending.pop(pid, None)
            if head is None:
                continue
            tail = resumed.group(1)
            rest = head + ("" if head.endswith(("(", " ")) or tail.startswith(")") else ", ") + tail
        yield pid, rest


def _addr(arg: str) -> tuple[str, str, int] | None:
    """(family, host, port) of a sockaddr argument, AF_UNIX gives (AF_UNIX, path, 0)."""
    fam = re.search(r"sa_family=(AF_[A-Z0-9]+)", arg)
    if not fam:
        return None
    family = fam.group(1)
    if family == "AF_UNIX":
        path = re.search(r'sun_path=@?"((?:[^"\\]|\\.)*)"', arg)
        return family, path.group(1) if path else "", 0
    port = re.search(r"sin6?_port=htons\((\d+)\)", arg)
    host = re.search(r'inet_addr\("([^"]+)"\)', arg) or re.search(r'inet_pton\(AF_INET6?, "([^"]+)"', arg)
    return family, host.group(1) if host else "?", int(port.group(1)) if port else 0


def parse(raw: str, sandbox: Sandbox, cwd: Path) -> Trace:
    t = Trace(returncode=0, stdout="", stderr="", raw=raw, sandbox=sandbox)
    cwds: dict[int, str] = {}

    def resolve(pid: int, dirfd: str | None, path: str) -> str:
        if path.startswith("/"):
            return os.path.normpath(path)
        base = cwds.get(pid, str(cwd))
        if dirfd:  # strace -y names the directory, AT_FDCWD included (the process's cwd)
            m = _FD.match(dirfd)
            if m and m.group(2):
                base = m.group(2)
        return os.path.normpath(os.path.join(base, path))

    def write(pid: int, call: str, path: str, line: str) -> None:
        t.writes.append(FsEvent(pid, call, path, line))

    for pid, text in _join_unfinished(raw.splitlines()):
        m = _CALL.match(text)
        if not m:
            continue
        call, argtext, ret, ret_path = m.group(1), m.group(2), m.group(3), m.group(4)
        ok = ret != "?" and int(ret) >= 0
        args = _split_args(argtext)
        line = f"{pid} {text}"

        if call in ("clone", "clone3", "fork", "vfork") and ok and int(ret) > 0:
            cwds[int(ret)] = cwds.get(pid, str(cwd))
        elif call == "chdir" and ok:
            cwds[pid] = resolve(pid, None, _unquote(args[0]) or ".")
        elif call == "fchdir" and ok:
            fd = _FD.match(args[0])
            if fd and fd.group(2):
                cwds[pid] = fd.group(2)
        elif call in ("open", "openat", "openat2", "creat"):
            flags = args[1] if call in ("open", "creat") else (args[2] if len(args) > 2 else "")
            if (call == "creat" or any(f in flags for f in _WRITE_FLAGS)) and ok:
                name = _unquote(args[0] if call in ("open", "creat") else args[1]) or ""
                path = ret_path or resolve(pid, args[0] if call.startswith("openat") else None, name)
                if "O_TMPFILE" in flags:
                    path = resolve(pid, args[0] if call.startswith("openat") else None, name)
                write(pid, call, os.path.normpath(path), line)
        elif call in ("mkdir", "rmdir", "unlink", "truncate", "mknod") and ok:
            write(pid, call, resolve(pid, None, _unquote(args[0]) or ""), line)
        elif call in ("mkdirat", "unlinkat", "mknodat") and ok:
            write(pid, call, resolve(pid, args[0], _unquote(args[1]) or ""), line)
        elif call in ("rename", "link", "symlink") and ok:
            if call == "rename":
                write(pid, call, resolve(pid, None, _unquote(args[0]) or ""), line)
            write(pid, call, resolve(pid, None, _unquote(args[1]) or ""), line)
        elif call in ("renameat", "renameat2", "linkat") and ok:
            if call != "linkat":
                write(pid, call, resolve(pid, args[0], _unquote(args[1]) or ""), line)
            write(pid, call, resolve(pid, args[2], _unquote(args[3]) or ""), line)
        elif call == "symlinkat" and ok:
            write(pid, call, resolve(pid, args[1], _unquote(args[2]) or ""), line)
        elif call == "socket" and args and args[0] in ("AF_INET", "AF_INET6"):
            ev = NetEvent(pid, call, args[0] if ok else "failed", line)
            t.inet_sockets.append(ev)
            inode = _INODE.search(ret_path or "")
            if ok:
                t._inet_inodes.append((inode.group(1) if inode else None, ev))
        elif call == "bind" and ok:
            addr, inode = _addr(args[1]), _INODE.search(args[0])
            if addr and inode and addr[0] in ("AF_INET", "AF_INET6"):
                t._bound[inode.group(1)] = (addr[1], addr[2])
        elif call == "listen" and ok:
            inode = _INODE.search(args[0])
            if inode and inode.group(1) in t._bound:
                t._listening_inodes[inode.group(1)] = t._bound[inode.group(1)]
                t.listening.append(t._bound[inode.group(1)])
        elif call in ("connect", "sendto", "sendmsg"):
            addr = _addr(argtext)
            if addr is None:
                continue
            family, host, port = addr
            if family in ("AF_INET", "AF_INET6"):
                t.egress.append(NetEvent(pid, call, f"{host}:{port}", line))
            elif family == "AF_UNIX" and host.startswith(NAME_SERVICE_SOCKETS):
                t.egress.append(NetEvent(pid, call, f"name service {host}", line))
    return t


# ---------------------------------------------------------------- running


def _strace_argv(out: Path, argv: Sequence[str], files: bool = True) -> list[str]:
    strace = strace_path()
    if strace is None:
        raise RuntimeError("strace is not installed")
    # -f: threads and children; -y: paths of fds; -s: long enough strings; -qq: no attach noise
    return [
        strace,
        "-f",
        "-qq",
        "-y",
        "-s",
        "4096",
        "-e",
        TRACE_SET if files else TRACE_NETWORK,
        "-e",
        "signal=none",
        "-o",
        str(out),
        *argv,
    ]


def run_traced(
    argv: Sequence[str],
    box: Sandbox,
    *,
    extra_env: dict[str, str] | None = None,
    timeout: float = 300,
    input: str | None = None,
    files: bool = True,
) -> Trace:
    """Run ``argv`` in ``box.work`` under ``strace -f`` and parse what it did."""
    fd, name = tempfile.mkstemp(prefix="strace-", suffix=".txt", dir=box.root)
    os.close(fd)
    out = Path(name)
    r = subprocess.run(
        _strace_argv(out, argv, files),
        cwd=box.work,
        env=box.env(extra_env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    t = parse(out.read_text(encoding="utf-8", errors="replace"), box, box.work)
    t.returncode, t.stdout, t.stderr = r.returncode, r.stdout, r.stderr
    return t


@dataclass
class TracedProcess:
    popen: subprocess.Popen[str]
    pid: int
    box: Sandbox
    out: Path
    trace: Trace | None = None

    def snapshot(self) -> Trace:
        """The trace so far, while the process runs (to wait for an event)."""
        return parse(self.out.read_text(encoding="utf-8", errors="replace"), self.box, self.box.work)


def _tracee_pid(popen: subprocess.Popen[str], out: Path, timeout: float = 30) -> int:
    """The traced process's pid: the first line strace writes is its ``execve``.

    (strace's own children in /proc are not enough: it forks a short-lived
    probe child at start-up to test ptrace features.)
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first = out.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
        m = re.match(r"^(\d+)\s+execve\(", first)
        if m:
            return int(m.group(1))
        if popen.poll() is not None:
            raise RuntimeError(
                f"strace exited before its child started: {popen.stderr.read() if popen.stderr else ''}"
            )
        time.sleep(0.02)
    raise RuntimeError("strace did not start its child")


@contextmanager
def traced(
    argv: Sequence[str],
    box: Sandbox,
    *,
    extra_env: dict[str, str] | None = None,
    stop_signal: int = signal.SIGTERM,
    stop_timeout: float = 30,
    files: bool = True,
) -> Iterator[TracedProcess]:
    """Start ``argv`` under strace; on exit signal it (not strace) and parse the trace into ``.trace``."""
    fd, name = tempfile.mkstemp(prefix="strace-", suffix=".txt", dir=box.root)
    os.close(fd)
    out = Path(name)
    popen = subprocess.Popen(
        _strace_argv(out, argv, files),
        cwd=box.work,
        env=box.env(extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    handle = TracedProcess(popen=popen, pid=_tracee_pid(popen, out), box=box, out=out)
    try:
        yield handle
    finally:
        if popen.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(handle.pid, stop_signal)
        try:
            stdout, stderr = popen.communicate(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.kill(handle.pid, signal.SIGKILL)
            popen.kill()
            stdout, stderr = popen.communicate()
        t = parse(out.read_text(encoding="utf-8", errors="replace"), box, box.work)
        t.returncode, t.stdout, t.stderr = popen.returncode, stdout, stderr
        handle.trace = t
