"""Load a classifier without blocking the caller (a UI thread, an event loop).

    future = edgeclf.load_async("albert-imdb")     # returns at once
    ...                                            # the window keeps drawing
    if future.done():
        clf = future.result()                      # re-raises a load error here

``load_async`` runs :func:`edgeclf.load` on a daemon thread and hands back a
standard :class:`concurrent.futures.Future`, so it composes with
``add_done_callback``, ``concurrent.futures.wait`` and
``asyncio.wrap_future``. Callbacks run on the loading thread: a GUI must
hand the result to its own thread (Tk: poll ``future.done()`` from
``after``; Qt: emit a signal), never touch widgets from the callback.

A daemon thread rather than a ``ThreadPoolExecutor``: closing the window
while a model is still loading must not keep the process alive until the
load finishes.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .classifier import Classifier


def load_async(name_or_path: str | os.PathLike[str] = "keras-imdb", **kwargs: Any) -> Future[Classifier]:
    """Start :func:`edgeclf.load` (same arguments) on a background thread; return its Future."""
    future: Future[Classifier] = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return  # cancelled before the thread got to run
        try:
            from .classifier import load

            clf = load(name_or_path, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(clf)

    threading.Thread(target=work, name=f"edgeclf-load-{os.fspath(name_or_path)}", daemon=True).start()
    return future
