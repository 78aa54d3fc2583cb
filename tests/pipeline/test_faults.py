"""Faults and determinism: a killed worker changes nothing; neither do schedulers or chunks."""

import os
import signal

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin

from dasklle import LocallyLinearEmbedding, datasets
from dasklle.exceptions import FallbackWarning

from ..conftest import local_cluster, manifold

# Same seed, same arithmetic: the embeddings agree to round-off (held to 1e-10).
DETERMINISM_ATOL = 1e-10
# The solve on the workers, stopped after 5 iterations: its round-off differs between runs by
# about 1e-13, and the unconverged iterate amplifies it (3e-9 measured). Another seed or split
# into ranges moves it by 2e-2.
UNCONVERGED_ATOL = 1e-7


class KillWorkerAfterFirst(SchedulerPlugin):
    """Kills (SIGKILL) the worker that holds the first finished task whose key has ``prefix``
    (``running``: the worker the first such task is sent to)."""

    def __init__(self, scheduler, prefix: str, running: bool = False):
        self.scheduler = scheduler
        self.prefix = prefix
        self.state = "processing" if running else "memory"
        self.killed: str | None = None

    def transition(self, key, start, finish, *args, **kwargs):
        if self.killed is None and finish == self.state and self.prefix in str(key):
            task = self.scheduler.tasks[key]
            worker = task.processing_on if finish == "processing" else next(iter(task.who_has))
            self.killed = worker.address
            os.kill(worker.pid, signal.SIGKILL)


@pytest.mark.parametrize("given", ["dask array", "numpy array"])
def test_worker_killed_during_weights_changes_nothing(given):
    # a numpy array's blocks are sent from the client: the scheduler keeps them to send again
    X = manifold("digits", 1797)
    X = da.from_array(X, chunks=(60, -1)) if given == "dask array" else X
    params = dict(n_neighbors=10, eigen_solver="arpack", random_state=0, chunk_rows=300)
    undisturbed = LocallyLinearEmbedding(**params).fit(X)
    with (
        local_cluster(memory_limit="1GiB") as cluster,
        Client(cluster),
    ):
        plugin = KillWorkerAfterFirst(cluster.scheduler, "block_weights")
        cluster.scheduler.add_plugin(plugin)
        disturbed = LocallyLinearEmbedding(**params).fit(X)
    assert plugin.killed is not None, "no worker was killed: the test did not test anything"
    np.testing.assert_allclose(disturbed.weights_, undisturbed.weights_, atol=1e-14)
    np.testing.assert_allclose(disturbed.embedding_, undisturbed.embedding_, atol=DETERMINISM_ATOL)


@pytest.mark.filterwarnings("ignore::dasklle.exceptions.EigenConvergenceWarning")
def test_worker_killed_while_the_worker_solve_orders_its_rows_changes_nothing():
    # B's chunks scattered from the client (in-memory neighbor lists) are lost with the worker
    # and scattered again; the order's task runs again with the same seed. The setup is what is
    # tested, so the solve stops after a few iterations, the same in both fits.
    X = da.from_array(manifold("digits", 1797), chunks=(300, -1))
    params = dict(n_neighbors=10, eigen_solver="amg", max_iter=5, random_state=0)
    with (
        local_cluster(memory_limit="1GiB") as cluster,
        Client(cluster),
        dask.config.set({"dasklle.eigen.placement": "workers"}),
    ):
        undisturbed = LocallyLinearEmbedding(**params).fit(X)
        plugin = KillWorkerAfterFirst(cluster.scheduler, "_locality_order", running=True)
        cluster.scheduler.add_plugin(plugin)
        with pytest.warns(FallbackWarning, match="rows were ordered"):
            disturbed = LocallyLinearEmbedding(**params).fit(X)
    assert plugin.killed is not None, "no worker was killed: the test did not test anything"
    assert disturbed.eigen_placement_ == "workers"
    np.testing.assert_allclose(disturbed.embedding_, undisturbed.embedding_, atol=UNCONVERGED_ATOL)


@pytest.mark.filterwarnings("ignore::dasklle.exceptions.EigenConvergenceWarning")
def test_worker_killed_while_partitions_are_merged_changes_nothing():
    # the merge's tasks read an array sent from the client (a partition holding each row): the
    # scheduler runs the task that holds it again after the loss
    X = datasets.digits_784(2000, random_state=2)[0]
    params = dict(n_neighbors=10, neighbors_algorithm="projected", max_iter=5, random_state=0)
    partitions = {
        "dasklle.neighbors.projected-brute-max-rows": 1000,
        "dasklle.neighbors.partition-rows": 1500,
        "dasklle.eigen.placement": "workers",
    }
    with (
        local_cluster(memory_limit="1GiB") as cluster,
        Client(cluster),
        dask.config.set(partitions),
    ):
        undisturbed = LocallyLinearEmbedding(**params).fit(X)
        plugin = KillWorkerAfterFirst(cluster.scheduler, "_merge_range", running=True)
        cluster.scheduler.add_plugin(plugin)
        disturbed = LocallyLinearEmbedding(**params).fit(X)
    assert plugin.killed is not None, "no worker was killed: the test did not test anything"
    np.testing.assert_array_equal(disturbed.neighbor_indices_, undisturbed.neighbor_indices_)
    np.testing.assert_allclose(disturbed.embedding_, undisturbed.embedding_, atol=UNCONVERGED_ATOL)


@pytest.mark.parametrize("solver", ["arpack", "amg"])
def test_same_seed_same_embedding_everywhere(client, solver):
    X = manifold("s_curve", 1000)
    params = dict(n_neighbors=10, eigen_solver=solver, random_state=7, tol=1e-6, max_iter=500)
    runs = {}
    for chunk_rows in (128, 1000):
        runs[f"distributed, 2 workers, chunks {chunk_rows}"] = (
            LocallyLinearEmbedding(chunk_rows=chunk_rows, **params).fit(X).embedding_
        )
    with dask.config.set(scheduler="threads"):
        runs["threads"] = LocallyLinearEmbedding(chunk_rows=300, **params).fit(X).embedding_
    with dask.config.set(scheduler="synchronous"):
        runs["synchronous"] = LocallyLinearEmbedding(chunk_rows=77, **params).fit(X).embedding_
    with (
        local_cluster(n_workers=1, memory_limit="auto") as one,
        Client(one),
    ):
        runs["distributed, 1 worker"] = (
            LocallyLinearEmbedding(**params).fit(da.from_array(X, chunks=(250, -1))).embedding_
        )
    reference = runs.pop("synchronous")
    for name, embedding in runs.items():
        np.testing.assert_allclose(embedding, reference, atol=DETERMINISM_ATOL, err_msg=name)
