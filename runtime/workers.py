"""Worker processes of the row pipeline (``edgeclf predict --jobs N``).

The main process owns the file and the output; each worker runs one
:class:`edgeclf.pipeline.ChunkWorker` (set up once by :func:`init`, loading
its own session on the first chunk) and answers :func:`run_chunk` calls.
Workers ignore Ctrl-C (the main process handles it and shuts the pool down)
and exit on their own when the main process dies without shutting them down
(SIGKILL, the OOM killer): see :func:`exit_with_parent`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import ChunkResult, ChunkWorker

_WORKER: ChunkWorker | None = None


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def mp_context() -> Any:
    """fork when this process runs one thread (the CLI: cheap, nothing to re-import);
    forkserver otherwise (a threaded host: forking a threaded process can deadlock)."""
    import multiprocessing

    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = 2
    methods = multiprocessing.get_all_start_methods()
    method = "fork" if threads == 1 and "fork" in methods else "forkserver"
    return multiprocessing.get_context(method if method in methods else "spawn")


def init(worker: ChunkWorker) -> None:
    """Pool initializer: keep ``worker`` for :func:`run_chunk`, ignore SIGINT, watch the parent."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    global _WORKER
    _WORKER = worker
    watch = threading.Thread(target=exit_with_parent, args=(os.getppid(),), name="edgeclf-parent-watch")
    watch.daemon = True
    watch.start()


def exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """Exit once this process's parent is gone.

    A worker whose parent was killed is re-parented (getppid changes) but
    never sees its call pipe close, because its sibling workers hold the same
    pipe: without this it would idle forever. Under forkserver the parent is
    the fork server, which exits when the main process does.
    """
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def run_chunk(data: bytes | str, last: bool) -> ChunkResult:
    assert _WORKER is not None, "run_chunk outside a worker set up by init()"
    return _WORKER(data, last)
