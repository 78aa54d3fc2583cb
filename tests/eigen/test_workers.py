"""The amg solve on the workers: the same embedding as in the client, both as dense mode's."""

import signal

import dask
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from dasklle.eigen import amg, locality, null_space, rowblocks, workers
from dasklle.eigen import placement as placements
from dasklle.eigen.amg import _order, _permuted
from dasklle.eigen.multigrid import knn_graph
from dasklle.eigen.placement import choose_placement
from dasklle.eigen.resident import ResidentOperator
from dasklle.exceptions import FallbackWarning

from ..conftest import manifold, max_sine, only_single_vectors_gathered
from .conftest import cost_operator, lle_weight_matrix

# converged to a bound of 1e-6 on the sine, both placements lie within 1e-6 of LAPACK
PLACEMENT_MAX_SINE = 1e-6
# the worker solve, keeping its block every iteration
PLACED_ON_WORKERS = {"dasklle.eigen.placement": "workers", "dasklle.eigen.checkpoint-interval": 0}


@pytest.fixture(scope="module")
def problem():
    # small, because each iteration on the workers costs its round trips through the scheduler
    X = manifold("digits", 400)
    return cost_operator(X), lle_weight_matrix(X)[1]


def test_both_placements_agree_with_dense(client, problem):
    M, indices = problem
    dense = null_space(M, 2, solver="dense")
    found = {}
    for placement in ("client", "workers"):
        with dask.config.set({"dasklle.eigen.placement": placement}):
            found[placement] = null_space(
                M, 2, solver="amg", tol=1e-6, random_state=0, neighbors=indices
            )
        assert found[placement].placement == placement
        assert found[placement].error_bound <= 1e-6
        assert max_sine(found[placement].vectors, dense.vectors) <= PLACEMENT_MAX_SINE
        np.testing.assert_allclose(found[placement].values, dense.values, rtol=1e-6, atol=1e-14)
    assert max_sine(found["client"].vectors, found["workers"].vectors) <= PLACEMENT_MAX_SINE


def test_the_scheduler_forgets_the_iterations_history(client, problem, monkeypatch):
    M, indices = problem
    tasks = []

    def count(n_iter, bound, X, theta):
        tasks.append(client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)))

    monkeypatch.setattr(workers, "RESEAT_EVERY", 3)
    with dask.config.set({"dasklle.eigen.placement": "workers"}):
        result = null_space(M, 2, solver="amg", tol=1e-6, random_state=0, neighbors=indices)
        amg.bottom_eigenvectors(
            M, 2, neighbors=indices, block=10, tol=0.0, max_iter=12,
            rng=np.random.default_rng(0), on_iteration=count, client=client,
        )  # fmt: skip
    # the blocks are scattered afresh every 3 iterations: the tasks the scheduler holds stop
    # growing (each iteration adds about 80 while a block's lineage is kept)
    assert max(tasks[7:]) <= max(tasks[:4]) + 100, tasks
    dense = null_space(M, 2, solver="dense")
    assert result.n_iter > 3 and max_sine(result.vectors, dense.vectors) <= PLACEMENT_MAX_SINE


def test_auto_places_large_problems_on_the_workers(client, problem, monkeypatch):
    M, indices = problem
    with dask.config.set({"dasklle.eigen.workers-min-rows": 300}):
        assert choose_placement("amg", M) == ("workers", client)
        assert choose_placement("factored", M)[0] == "client"
        assert choose_placement("amg", M.tocsr())[0] == "client"  # not the operator
    assert choose_placement("amg", M)[0] == "client"  # below the threshold
    # a solve the client could not hold goes to the workers whatever its size
    with monkeypatch.context() as patch:
        patch.setattr(placements, "client_bytes", lambda n: 2**62)
        assert choose_placement("amg", M)[0] == "workers"


def test_workers_without_a_cluster_run_in_the_client_and_say_so(problem):
    M, indices = problem
    with dask.config.set({"dasklle.eigen.placement": "workers", "scheduler": "threads"}):
        with pytest.warns(FallbackWarning, match="placement='workers'"):
            result = null_space(M, 2, solver="amg", neighbors=indices)
    assert result.placement == "client"


def test_ranges_go_to_workers_in_proportion_to_their_threads():
    class Cluster:  # what Ranges reads of a client
        def scheduler_info(self):
            return {"workers": {"tcp://b": {"nthreads": 1}, "tcp://a": {"nthreads": 4}}}

    ranges = rowblocks.Ranges.on(Cluster(), np.linspace(0, 1000, 11).astype(np.int64))
    assert ranges.workers == ["tcp://a"] * 8 + ["tcp://b"] * 2  # consecutive, 4 : 1


def test_worker_products_and_reductions_match_numpy(client, problem):
    M, indices = problem
    graph = knn_graph(indices, M.shape[0])
    order = _order(M, graph)
    ordered, _ = _permuted(M, graph, order)
    # two ranges a worker: a product reads its worker's other range in place, the others' halos;
    # the ranges are cut from M in its own order
    with dask.config.set({"dasklle.eigen.worker-range-rows": 100}):
        resident = ResidentOperator.scattered(client, M)
        on_workers = workers.WorkerProblem(client, resident, order, np.random.default_rng(0))
    assert len(on_workers.bounds) - 1 == 4 and len(set(on_workers.ranges.workers)) == 2
    X = np.random.default_rng(1).standard_normal((M.shape[0], 3))
    blocks = on_workers.scattered(X)
    np.testing.assert_allclose(on_workers.times(blocks).gather(), ordered @ X, atol=1e-12)
    assert blocks.gather() is blocks.gather()  # a kept block and a checkpoint share one gather
    np.testing.assert_allclose(rowblocks.gram(blocks, blocks), X.T @ X, rtol=1e-12)
    np.testing.assert_allclose(on_workers.deflated(blocks).gather(), X - X.mean(0), atol=1e-12)
    # the preconditioner is symmetric, as LOBPCG needs (float32 inside)
    Y = np.random.default_rng(2).standard_normal(X.shape)
    TX = on_workers.precondition(blocks).gather()
    TY = on_workers.precondition(on_workers.scattered(Y)).gather()
    np.testing.assert_allclose(Y.T @ TX, (X.T @ TY).T, rtol=1e-4)


def test_unconverged_worker_solve_warns(client, problem):
    M, indices = problem
    with dask.config.set({"dasklle.eigen.placement": "workers"}):
        with pytest.warns(ConvergenceWarning, match="sine"):
            result = null_space(M, 2, solver="amg", tol=1e-9, max_iter=3, neighbors=indices)
    assert result.placement == "workers" and np.isfinite(result.vectors).all()


def test_worker_solve_stops_when_its_bound_stops_falling(client, problem, monkeypatch):
    """The worker loop asks ``lobpcg.Stall`` as the client's does (whose arithmetic and real
    floor are tested with the client's solve); here it says "stalled" at the third bound."""
    M, indices = problem

    class StallsAtTheThirdBound:
        def __init__(self):
            self.seen = 0

        def __call__(self, bound):
            self.seen += 1
            return self.seen == 3

    monkeypatch.setattr(workers, "Stall", StallsAtTheThirdBound)
    with dask.config.set({"dasklle.eigen.placement": "workers"}):
        with pytest.warns(ConvergenceWarning, match="in 2 iterations, its bound no longer falling"):
            result = null_space(M, 2, solver="amg", tol=1e-17, max_iter=1000, neighbors=indices)
    assert result.placement == "workers" and result.n_iter == 2


def _solve_hit_at_iteration_6(problem, monkeypatch, hit, partial=None):
    """The worker solve of ``problem`` on a 2-worker cluster of its own, calling hit(X) once
    at iteration 6 (after that iteration's block is kept); the result and dense mode's.

    A SIGALRM ends a solve that waits more than 300 s (tasks held for a worker that left
    would wait forever)."""
    from distributed import Client

    from ..conftest import local_cluster

    M, indices = problem
    keep = workers._KeptBlock.__call__
    hits = []

    def hit_once(self, n_iter, bound, X, theta):
        keep(self, n_iter, bound, X, theta)
        if n_iter == 6 and not hits:
            hits.append(hit(X))

    def waited_too_long(*_):
        raise TimeoutError("the solve waited on a worker that left")

    monkeypatch.setattr(workers._KeptBlock, "__call__", hit_once)
    previous = signal.signal(signal.SIGALRM, waited_too_long)
    signal.alarm(300)
    try:
        with local_cluster() as cluster, Client(cluster), dask.config.set(PLACED_ON_WORKERS):
            result = null_space(M, 2, solver="amg", tol=1e-6, neighbors=indices, partial=partial)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert hits and hits[0]  # the worker was killed or retired
    assert result.placement == "workers" and result.error_bound <= 1e-6
    return result, null_space(M, 2, solver="dense")


def _kill(X):
    import os

    victim, pid = next(iter(X.client.run(os.getpid).items()))
    os.kill(pid, signal.SIGKILL)
    return victim


def test_a_worker_lost_mid_solve_costs_its_iterations_not_the_solve(problem, monkeypatch):
    with pytest.warns(FallbackWarning, match="worker was lost.*from iteration 6"):
        result, dense = _solve_hit_at_iteration_6(problem, monkeypatch, _kill)
    assert result.n_iter > 6  # it went on from the block kept at iteration 6
    assert max_sine(result.vectors, dense.vectors) <= PLACEMENT_MAX_SINE


def test_a_worker_lost_mid_solve_starts_again_from_the_stores_block(problem, monkeypatch, tmp_path):
    from dasklle.io.store import Checkpoints
    from dasklle.pipeline.runner import PartialState

    # with a store, the block is saved there by the workers and never kept in this process
    only_single_vectors_gathered(monkeypatch)
    partial = PartialState(Checkpoints(tmp_path / "fit.zarr"), "eigen", "input")
    with pytest.warns(FallbackWarning, match="worker was lost.*from iteration 6"):
        result, dense = _solve_hit_at_iteration_6(problem, monkeypatch, _kill, partial)
    assert result.n_iter > 6 and partial.load()["attributes"]["progress"] >= 6
    assert max_sine(result.vectors, dense.vectors) <= PLACEMENT_MAX_SINE


def test_a_worker_retired_mid_solve_hands_its_ranges_over(problem, monkeypatch):
    # an adaptive cluster or a batch job's lifetime retires workers gracefully: their data
    # moves, and the ranges' tasks must run where it went rather than wait for the worker
    def retire(X):
        return X.client.retire_workers([X.ranges.workers[0]], close_workers=True)

    result, dense = _solve_hit_at_iteration_6(problem, monkeypatch, retire)
    assert max_sine(result.vectors, dense.vectors) <= PLACEMENT_MAX_SINE


def test_the_locality_order_keeps_a_dense_eigendecomposition_within_its_budget():
    """The coarse graph's eigenvectors come from a dense eigh only when its matrices fit the
    task's budget; past it, from shift-invert on the sparse Laplacian: the same coordinates."""
    _, indices = lle_weight_matrix(manifold("swiss_roll", 1500), 10)
    graph = knn_graph(indices, 1500)
    dense = locality._spectral_coordinates(graph, 8, seed=0, budget=2**40)
    sparse = locality._spectral_coordinates(graph, 8, seed=0, budget=0)
    assert dense.shape == sparse.shape == (1500, 8)
    assert max_sine(dense, sparse) <= 1e-6
    order = locality.locality_order(graph, 4, seed=0, budget=0)
    assert np.array_equal(np.sort(order), np.arange(1500))
