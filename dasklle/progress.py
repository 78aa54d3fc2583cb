"""Feedback while stages run: dask's own progress bars, or periodic lines in non-interactive logs.

``compute(*collections, label=..., verbose=...)`` replaces ``dask.compute`` in the pipeline:

- quiet (``verbose=False``): plain ``dask.compute``;
- on a terminal: ``dask.diagnostics.ProgressBar`` for the local schedulers, ``distributed.progress``
  when a distributed client is active;
- elsewhere (batch logs): a line every ``LOG_INTERVAL`` seconds with tasks done / total.

``stage(name, verbose)`` prints one line when a stage starts and one when it ends, with its time.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import dask
from dask.callbacks import Callback

LOG_INTERVAL = 10.0


def _interactive() -> bool:
    return sys.stderr.isatty()


def log(message: str) -> None:
    """One line of progress on stderr (so stdout stays clean for results)."""
    print(f"[dasklle] {message}", file=sys.stderr, flush=True)


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
    """Local-scheduler callback that logs tasks done / total every LOG_INTERVAL seconds."""

    def __init__(self, label: str):
        super().__init__()
        self.label = label
        self.last = time.monotonic()

    def _start_state(self, dsk, state):
        self.total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))

    def _posttask(self, key, result, dsk, state, worker_id):
        now = time.monotonic()
        if now - self.last >= LOG_INTERVAL:
            self.last = now
            log(f"{self.label}: {len(state['finished'])}/{self.total} tasks")


def _active_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def compute(*collections: Any, label: str, verbose: bool) -> tuple[Any, ...]:
    """dask.compute with progress feedback when verbose."""
    if not verbose:
        return dask.compute(*collections)
    local = dask.config.get("scheduler", None) not in (None, "dask.distributed")
    client = None if local else _active_client()
    if client is None:
        if _interactive():
            from dask.diagnostics import ProgressBar

            with ProgressBar(minimum=1.0, out=sys.stderr):
                return dask.compute(*collections)
        with _PeriodicLines(label):
            return dask.compute(*collections)
    futures = client.compute(list(collections))
    if _interactive():
        from distributed import progress

        progress(futures, multi=False)
    else:
        _log_futures(futures, label)
    return tuple(client.gather(futures))


def _log_futures(futures: list, label: str) -> None:
    """Periodic lines while distributed futures run (a background thread, stops when done)."""
    start = time.monotonic()

    def watch() -> None:
        while not all(f.done() for f in futures):
            time.sleep(LOG_INTERVAL)
            log(f"{label}: running for {time.monotonic() - start:.0f} s")

    threading.Thread(target=watch, daemon=True).start()


class IterationLog:
    """Counts an iterative solver's iterations and logs the residual every LOG_INTERVAL seconds.

    LOBPCG applies its preconditioner exactly once per iteration, to the block of current
    residuals, so wrapping the preconditioner gives both the count and the residual norms
    without touching the solver.
    """

    def __init__(self, label: str, verbose: bool):
        self.label, self.verbose = label, verbose
        self.iterations = 0
        self.residual = float("nan")
        self.last = time.monotonic()

    def update(self, iterations: int, residual: float) -> None:
        """Record an iteration (a solver that reports its own residuals calls this directly)."""
        self.iterations, self.residual = iterations, residual
        now = time.monotonic()
        if self.verbose and now - self.last >= LOG_INTERVAL:
            self.last = now
            log(f"{self.label}: iteration {self.iterations}, max residual {self.residual:.2e}")

    def wrap(self, preconditioner, n: int):
        from scipy.sparse.linalg import LinearOperator

        def apply(R):
            import numpy as np

            self.update(self.iterations + 1, float(np.linalg.norm(R.reshape(n, -1), axis=0).max()))
            return R if preconditioner is None else preconditioner @ R

        return LinearOperator((n, n), matvec=apply, matmat=apply, dtype=float)
