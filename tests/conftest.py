"""Shared fixtures: a small 2-worker LocalCluster, the test manifolds, and the graph guard."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.linalg
from sklearn.datasets import load_digits, make_s_curve, make_swiss_roll


def only_single_vectors_gathered(monkeypatch) -> None:
    """Makes the worker solve fail if it gathers an (n, columns) block or its vectors into this
    process: single vectors (the spectral radius' Lanczos vectors in the setup) may pass."""
    from dasklle.eigen.rowblocks import RowBlocks

    gather = RowBlocks.gather

    def refused(blocks):
        assert blocks.columns == 1, "an n-row block was gathered into the client"
        return gather(blocks)

    monkeypatch.setattr(RowBlocks, "gather", refused)


def max_sine(A: np.ndarray, B: np.ndarray) -> float:
    """Sine of the largest principal angle between the column spaces of A and B, both centred.

    LLE's eigenvectors are orthogonal to the constant vector by construction, but LAPACK and ARPACK
    mix a little of it in, ~eps * |M| / gap, and the gap between the zero eigenvalue and the next
    one is 1e-10 or smaller on these manifolds (measured: 2.4e-6 sine on an 800-point swiss roll
    between scikit-learn and dasklle, all of it along the constant vector). Centring removes
    exactly that component, so the comparison measures the embedding, not the round-off.
    """
    A = A - A.mean(0)
    B = B - B.mean(0)
    return float(np.sin(scipy.linalg.subspace_angles(A, B).max()))


def manifold(name: str, n_samples: int = 800) -> np.ndarray:
    """The three test manifolds, deterministic."""
    if name == "swiss_roll":
        return make_swiss_roll(n_samples, random_state=0)[0]
    if name == "s_curve":
        return make_s_curve(n_samples, random_state=0)[0]
    if name == "digits":
        # scikit-learn's real 8x8 digits are integers, so many neighbor distances tie exactly and
        # two exact searches may break the ties differently; noise far below the data's
        # resolution (1e-6 vs steps of 1) removes the ties without changing the data.
        X = load_digits().data[:n_samples]
        return X + 1e-6 * np.random.default_rng(0).standard_normal(X.shape)
    raise ValueError(name)


def sklearn_neighbors(X: np.ndarray, k: int) -> np.ndarray:
    """Each row's k nearest other rows, by scikit-learn's exact search."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)[:, 1:]


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """The share of the exact neighbor lists' entries that the found lists hold."""
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(found, exact, strict=True))
    return hits / exact.size


def snapshot(root):
    """Every path under root with its bytes (files) and modification time."""
    paths = [root, *sorted(root.rglob("*"))]
    return {p: (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in paths}


MANIFOLDS = ("swiss_roll", "s_curve", "digits")


def integer_data(name: str) -> np.ndarray:
    """Data whose float64 squared distances are exact integers, so many of them tie exactly."""
    if name == "digits":
        return load_digits().data[:1000]  # pixel counts 0..16, no duplicated rows
    if name == "grid":
        axes = np.meshgrid(np.arange(12), np.arange(12), np.arange(4), indexing="ij")
        return np.stack(axes, axis=-1).reshape(-1, 3).astype(np.float64)
    raise ValueError(name)


def lowest_index_neighbors(queries: np.ndarray, points: np.ndarray, k: int) -> np.ndarray:
    """Each query's k nearest points by (squared distance, row index), all of them ranked.

    Exact on integer-valued (or half-integer) data, whose float64 squared distances are exact.
    """
    q = np.asarray(queries, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    d2 = (q * q).sum(1)[:, None] - 2.0 * (q @ p.T) + (p * p).sum(1)[None, :]
    index = np.broadcast_to(np.arange(len(p)), d2.shape)
    return np.lexsort((index, d2), axis=1)[:, :k]


def local_cluster(n_workers: int = 2, memory_limit="2GiB"):
    """A LocalCluster of single-threaded worker processes, bound to localhost, no dashboard."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit=memory_limit,
    )


@pytest.fixture(scope="session")
def cluster():
    """A 2-worker, 1-thread-each LocalCluster shared by the tests that ask for it."""
    with local_cluster() as c:
        yield c


@pytest.fixture
def client(cluster):
    """A client on the shared cluster, the default dask scheduler while the test runs."""
    from distributed import Client

    with Client(cluster) as c:
        yield c


RUN_SPEC_CONFLICT = "Detected different `run_spec`"


class SchedulerRecords(logging.Handler):
    """Keeps the scheduler's reports of one key submitted with two different tasks."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.conflicts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if RUN_SPEC_CONFLICT in message:
            self.conflicts.append(message)

    def check(self) -> None:
        """Fail with the first report, if there is one."""
        if self.conflicts:
            pytest.fail(
                f"{len(self.conflicts)} run_spec conflict(s) in the scheduler:\n"
                + self.conflicts[0][:2000],
                pytrace=False,
            )


@pytest.fixture(autouse=True)
def run_spec_guard():
    """Fails a test during which the in-process scheduler saw one key with two different tasks.

    The handler sits on the scheduler's own logger, so it sees the records whether or not they
    propagate to the root logger (where caplog listens), and the logger is kept at WARNING or
    below for the test so that the record is created at all. A test that provokes a conflict on
    purpose empties ``conflicts`` itself.
    """
    logger = logging.getLogger("distributed.scheduler")
    handler = SchedulerRecords()
    level = logger.level
    # its own level, so that a test lowering the verbosity of "distributed" cannot blind it
    logger.setLevel(min(logger.getEffectiveLevel(), logging.WARNING))
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    handler.check()
