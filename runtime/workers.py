"""A generic ordered process map: ``fn(item)`` for a stream of items, results in input order.

As fastembed's ``ParallelWorkerPool.ordered_map``: at most ``depth`` items are
in flight, so memory stays flat for any stream length. :class:`Pool` runs
``fn`` in worker processes (or in this process when ``jobs == 1``: the same
code path, no workers). ``fn`` is handed to each worker once, when it
starts, and keeps its state there (a loaded model) between items.

Workers ignore Ctrl-C (the main process handles it and shuts the pool down)
and exit on their own when the main process dies without shutting them down
(SIGKILL, the OOM killer): see :func:`exit_with_parent`. Nothing here knows
what the items are.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_FN: Callable[[Any], Any] | None = None


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


def init(fn: Callable[[Any], Any]) -> None:
    """Worker initializer: keep ``fn`` for :func:`call`, ignore SIGINT, watch the parent."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    global _FN
    _FN = fn
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


def call(item: Any) -> Any:
    assert _FN is not None, "call() outside a worker set up by init()"
    return _FN(item)


class _Inline:
    """A future computed in this process when its result is asked for (``jobs == 1``)."""

    def __init__(self, fn: Callable[[Any], Any], item: Any) -> None:
        self.fn, self.item = fn, item

    def result(self) -> Any:
        return self.fn(self.item)

    def cancel(self) -> bool:
        return True


class Pool:
    """``fn`` in ``jobs`` worker processes (multiprocessing ``context``), or here when ``jobs == 1``."""

    def __init__(self, fn: Callable[[Any], Any], jobs: int = 1, context: Any = None) -> None:
        self.fn = fn
        self.jobs = jobs
        self._pool: Any = None
        if jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                jobs, mp_context=context or mp_context(), initializer=init, initargs=(fn,)
            )

    def submit(self, item: Any) -> Any:
        """A future of ``fn(item)`` (``.result()``, ``.cancel()``)."""
        return _Inline(self.fn, item) if self._pool is None else self._pool.submit(call, item)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ordered_map(pool: Pool, items: Iterable[Any], depth: int) -> Iterator[tuple[Any, Any]]:
    """``(item, fn(item))`` for every item, in input order, at most ``depth`` items in flight."""
    it = iter(items)
    queue: deque = deque()

    def fill() -> None:
        for item in it:
            queue.append((item, pool.submit(item)))
            if len(queue) >= depth:
                return

    fill()
    while queue:
        item, future = queue.popleft()
        result = future.result()
        fill()
        yield item, result
