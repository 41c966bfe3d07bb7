"""Dynamic batching, the way Triton's dynamic batcher does it.

Requests for one model go into a bounded queue. One worker thread per model
takes the oldest request and, while the batch holds fewer than ``max_batch``
texts, keeps taking requests that arrive within ``max_wait_s`` of that
first one; then the whole batch goes through one
:meth:`Classifier.predict_proba` call (one ``session.run`` when the
classifier's ``batch_size`` is at least ``max_batch``) and every request
gets its own rows back. Requests that queue while a batch runs are batched
together at once, without waiting.

A full queue refuses new requests (:class:`QueueFull`, a 503 upstream)
instead of letting latency grow without bound. With ``enabled=False`` each
request runs alone through the same queue and worker, which is what the
benchmark compares against.

Standard library only: the worker is a thread (onnxruntime releases the GIL
while it runs), results travel through :class:`concurrent.futures.Future`,
which asyncio code awaits with :func:`asyncio.wrap_future`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


class QueueFull(RuntimeError):
    """The model's queue holds ``max_queue`` requests already."""


class Closed(RuntimeError):
    """The batcher is shutting down and takes no new requests."""


@dataclass
class _Job:
    texts: list[str]
    future: Future = field(default_factory=Future)


@dataclass
class Stats:
    requests: int = 0  # requests run
    texts: int = 0  # texts run
    runs: int = 0  # predict_proba calls (batches)
    rejected: int = 0  # requests refused because the queue was full


class Batcher:
    def __init__(
        self,
        predict_proba: Callable[[Sequence[str]], np.ndarray],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.0,
        max_queue: int = 256,
        enabled: bool = True,
        name: str = "model",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        if max_wait_s < 0:
            raise ValueError("the batch wait must be >= 0")
        self._predict = predict_proba
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.enabled = enabled
        self.stats = Stats()
        self.running = 0  # texts in the batch being run now
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._idle = True  # the worker waits for a first request
        self._queued_texts = 0
        self._collected = 0  # texts in the batch being collected
        self._thread = threading.Thread(target=self._loop, name=f"edgeclf-batcher-{name}", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, texts: list[str]) -> Future:
        """Queue ``texts``; the future resolves to their probabilities, in order."""
        job = _Job(texts)
        with self._cond:
            if self._closed:
                raise Closed("the server is shutting down")
            if len(self._queue) >= self.max_queue:
                self.stats.rejected += 1
                raise QueueFull(f"{len(self._queue)} requests are queued (--max-queue {self.max_queue})")
            self._queue.append(job)
            self._queued_texts += len(texts)
            # wake the worker when it is idle, or when a batch it is collecting is full; not for
            # every request while it waits out max_wait (each wake-up is a GIL hand-over)
            if self._idle or self._queued_texts + self._collected >= self.max_batch:
                self._cond.notify()
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, finish the queued ones, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    # ------------------------------------------------------------ worker

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            self._idle = True
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            self._idle = False
            batch = [self._take()]
            deadline = time.monotonic() + self.max_wait_s
            while self.enabled:
                while self._queue and self._collected + len(self._queue[0].texts) <= self.max_batch:
                    batch.append(self._take())
                remaining = deadline - time.monotonic()
                if self._queue or self._collected >= self.max_batch or remaining <= 0 or self._closed:
                    break  # full (a queued request that does not fit starts the next batch) or waited enough
                self._cond.wait(remaining)
            self._collected = 0
            # a request whose caller went away is dropped before it costs a run
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            self.running = sum(len(job.texts) for job in batch)
            return batch

    def _take(self) -> _Job:
        job = self._queue.popleft()
        self._queued_texts -= len(job.texts)
        self._collected += len(job.texts)
        return job

    def _run(self, batch: list[_Job]) -> None:
        texts = [t for job in batch for t in job.texts]
        try:
            probs = self._predict(texts)
        except Exception as exc:  # every waiting request learns why, the worker lives on
            self.running = 0
            for job in batch:
                job.future.set_exception(exc)
            return
        # counters first: a client that has its answer sees them in /health
        self.stats.runs += 1
        self.stats.requests += len(batch)
        self.stats.texts += len(texts)
        self.running = 0
        start = 0
        for job in batch:
            job.future.set_result(probs[start : start + len(job.texts)])
            start += len(job.texts)
