"""Feedback while stages run: dask's own progress bars, or periodic lines in non-interactive logs.

``compute(*collections, label=..., verbose=...)`` replaces ``dask.compute`` in dasklle (on a
distributed cluster it also waits until the scheduler has forgotten the results):

- quiet (``verbose=False``): no feedback;
- on a terminal: ``dask.diagnostics.ProgressBar`` for the local schedulers, ``distributed.progress``
  when a distributed client is active;
- elsewhere (batch logs): a line of tasks done / total every ``dasklle.progress.log-interval``
  seconds.

``stage(name, verbose)`` prints one line when a stage starts and one when it ends, with its time.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import dask
from dask.callbacks import Callback

from .. import config

RELEASE_TIMEOUT = 10.0  # longest wait for the scheduler to forget a compute's results (seconds)
RELEASE_POLL = 0.005


def _interactive() -> bool:
    return sys.stderr.isatty()


logger = logging.getLogger("dasklle")


def log(message: str) -> None:
    """One progress message, at INFO on the ``dasklle`` logger (callers check ``verbose``)."""
    _show_when_unconfigured()
    logger.info(message)


def _show_when_unconfigured() -> None:
    """``verbose=True`` is seen on stderr even where the application configured no logging."""
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[dasklle] %(message)s"))
        logger.addHandler(handler)


@contextlib.contextmanager
def stage(name: str, verbose: bool) -> Iterator[None]:
    """Announce a stage and report its duration."""
    if not verbose:
        yield
        return
    log(f"{name} ...")
    start = time.perf_counter()
    yield
    log(f"{name} done in {time.perf_counter() - start:.1f} s")


class _PeriodicLines(Callback):
    """Local-scheduler callback: a line of tasks done / total every ``progress.log-interval`` s."""

    def __init__(self, label: str):
        super().__init__()
        self.label = label
        self.last = time.monotonic()

    def _start_state(self, dsk, state):
        self.total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))

    def _posttask(self, key, result, dsk, state, worker_id):
        now = time.monotonic()
        if now - self.last >= config.get("progress.log-interval"):
            self.last = now
            log(f"{self.label}: {len(state['finished'])}/{self.total} tasks")


def distributed_client():
    """The distributed client that dask.compute would use now, or None."""
    if dask.config.get("scheduler", None) not in (None, "dask.distributed"):
        return None
    if "distributed" not in sys.modules:  # never imported: no client exists
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def compute(*collections: Any, label: str = "compute", verbose: bool = False) -> tuple[Any, ...]:
    """dask.compute, with progress feedback when verbose.

    With a distributed client it returns only once the scheduler has forgotten what it computed
    (see ``_wait_forgotten``), so the next graph never meets this one's tasks.
    """
    client = distributed_client()
    if client is None:
        return _local_compute(collections, label, verbose)
    futures = client.compute(list(collections))
    keys = [future.key for future in futures]
    try:
        results = _gather(client, futures, label, verbose)
    except BaseException:
        # a failed or interrupted compute stops its other tasks: left running, they would read
        # scratch files that the caller is about to remove
        client.cancel(futures)
        raise
    finally:
        del futures  # the client releases the results when their futures go
    _wait_forgotten(client, keys)
    return results


def futures(*collections: Any, label: str = "compute", verbose: bool = False) -> list:
    """The collections computed on the distributed client's workers and left there: their
    futures, once all are done (with progress feedback when verbose)."""
    from distributed import wait

    client = distributed_client()
    running = client.compute(list(collections))
    done = _log_until_done(label) if verbose else None
    try:
        wait(running)
        for future in running:
            if future.status != "finished":
                future.result()  # raises the task's error (or its cancellation) here
    except BaseException:
        client.cancel(running)
        raise
    finally:
        if done is not None:
            done.set()
    return running


def run(*collections: Any, label: str = "compute", keep: bool = False, verbose: bool = False):
    """``compute``, or with ``keep`` ``futures`` (the results left on the workers)."""
    return (futures if keep else compute)(*collections, label=label, verbose=verbose)


def _local_compute(collections: tuple, label: str, verbose: bool) -> tuple[Any, ...]:
    if not verbose:
        return dask.compute(*collections)
    if _interactive():
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=1.0, out=sys.stderr):
            return dask.compute(*collections)
    with _PeriodicLines(label):
        return dask.compute(*collections)


def _gather(client, futures: list, label: str, verbose: bool) -> tuple[Any, ...]:
    if not verbose:
        return tuple(client.gather(futures))
    if _interactive():
        from distributed import progress

        progress(futures, multi=False)
        return tuple(client.gather(futures))
    done = _log_until_done(label)
    try:
        return tuple(client.gather(futures))
    finally:
        done.set()


def _wait_forgotten(client, keys: list) -> None:
    """Wait, at most RELEASE_TIMEOUT seconds, until the scheduler no longer knows ``keys``.

    The client releases futures through its event loop, and the release can reach the scheduler
    after the next graph. The scheduler then still holds this compute's tasks, and a key that
    the next graph optimizes differently (fused with other tasks) arrives with a second task:
    "Detected different `run_spec`", which dask warns can cause failures and deadlocks.
    """
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while client.run_on_scheduler(_known, keys) and time.monotonic() < deadline:
        time.sleep(RELEASE_POLL)


def _known(keys: list, dask_scheduler=None) -> bool:
    return any(key in dask_scheduler.tasks for key in keys)


def _log_until_done(label: str) -> threading.Event:
    """Periodic lines from a background thread until the returned event is set.

    The thread holds no futures: a future it kept would keep its result and the whole lineage
    in the cluster after the compute returned.
    """
    start = time.monotonic()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(config.get("progress.log-interval")):
            log(f"{label}: running for {time.monotonic() - start:.0f} s")

    threading.Thread(target=watch, daemon=True).start()
    return done


class IterationLog:
    """Counts an iterative solver's iterations; logs the residual every ``progress.log-interval`` s.

    LOBPCG applies its preconditioner exactly once per iteration, to the block of current
    residuals, so wrapping the preconditioner gives both the count and the residual norms
    without touching the solver.
    """

    def __init__(self, label: str, verbose: bool, quantity: str = "max residual"):
        self.label, self.verbose, self.quantity = label, verbose, quantity
        self.iterations = 0
        self.residual = float("nan")
        self.last = time.monotonic()

    def update(self, iterations: int, residual: float, *_) -> None:
        """Record an iteration (a solver that reports its own error measure calls this)."""
        self.iterations, self.residual = iterations, residual
        now = time.monotonic()
        if self.verbose and now - self.last >= config.get("progress.log-interval"):
            self.last = now
            log(f"{self.label}: iteration {self.iterations}, {self.quantity} {self.residual:.2e}")

    def wrap(self, preconditioner, n: int):
        from scipy.sparse.linalg import LinearOperator

        def apply(R):
            import numpy as np

            self.update(self.iterations + 1, float(np.linalg.norm(R.reshape(n, -1), axis=0).max()))
            return R if preconditioner is None else preconditioner @ R

        return LinearOperator((n, n), matvec=apply, matmat=apply, dtype=float)
