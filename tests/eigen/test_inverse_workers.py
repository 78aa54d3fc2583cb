"""The inverse preconditioner with its vectors on the workers: products with B and B^T, the
left null vector, and the solve that GMRES with the cycle for B preconditions against dense
mode. One problem is built for all (its setup's solve for u takes most of the time), in four
ranges of 100 rows: some rows have no neighbor within their range."""

import dask
import numpy as np

from dasklle.eigen import inverse_workers, null_space, workers
from dasklle.eigen.amg import _order
from dasklle.eigen.multigrid import knn_graph
from dasklle.eigen.resident import ResidentOperator

from ..conftest import manifold, max_sine
from .conftest import cost_operator, lle_weight_matrix


def test_the_inverse_on_the_workers_solves_and_agrees_with_dense(client):
    X = manifold("digits", 400)
    M, indices = cost_operator(X), lle_weight_matrix(X)[1]
    order = _order(M, knn_graph(indices, M.shape[0]))
    B = M.B.toarray()[order][:, order]
    resident = ResidentOperator.scattered(client, M)
    rng = np.random.default_rng(0)
    with dask.config.set({"dasklle.eigen.worker-range-rows": 100}):
        problem = workers.WorkerProblem(client, resident, order, rng, inverse=True)
    inverse = problem.inverse
    assert inverse is not None and len(problem.bounds) == 5
    assert len(set(problem.ranges.workers)) == 2
    R = np.random.default_rng(1).standard_normal((M.shape[0], 3))
    blocks = problem.scattered(R)
    np.testing.assert_allclose(inverse.cycle.times(blocks).gather(), B @ R, atol=1e-12)
    np.testing.assert_allclose(inverse.cycle.times(blocks, True).gather(), B.T @ R, atol=1e-12)
    # u spans B^T's null space (B is singular on both sides)
    u = inverse.left_null.gather().ravel()
    assert inverse.null_residual <= 1e-8
    np.testing.assert_allclose(np.linalg.norm(B.T @ u), inverse.null_residual, rtol=1e-6)
    # each solve reaches its tolerance (consistent right sides: orthogonal to 1, then to u)
    r = R - R.mean(axis=0)
    y = inverse._solve(problem.scattered(r), True, inverse.rtol).gather()
    assert np.all(np.linalg.norm(B.T @ y - r, axis=0) <= inverse.rtol * np.linalg.norm(r, axis=0))
    y -= np.outer(u, u @ y)
    z = inverse._solve(problem.scattered(y), False, inverse.rtol).gather()
    assert np.all(np.linalg.norm(B @ z - y, axis=0) <= inverse.rtol * np.linalg.norm(y, axis=0))
    # the solve it preconditions: a few iterations where the cycle for M takes 67
    start = problem.scattered(np.random.default_rng(2).standard_normal((M.shape[0], 4)))
    theta, vectors, n_iter, bound = workers.lobpcg_on_workers(
        problem, start, n_wanted=2, tol=1e-6, max_iter=20
    )
    dense = null_space(M, 2, solver="dense")
    found = np.empty((M.shape[0], 2))
    found[order] = vectors.gather()[:, :2]
    assert n_iter <= 8 and bound <= 1e-6
    assert max_sine(found, dense.vectors) <= 1e-6
    np.testing.assert_allclose(theta[:2], dense.values, rtol=1e-6, atol=1e-14)


class _Ranges:
    """Row ranges on two workers, for the arithmetic of ``columns_together``."""

    def __init__(self, rows_each: int):
        self.bounds = np.array([0, rows_each, 2 * rows_each])

    def by_worker(self):
        return iter([("a", [0]), ("b", [1])])


def test_columns_solved_together_follow_the_workers_memory():
    basis = 41 * 8  # bytes a row and column of a Krylov basis of 41 vectors
    small = {"dasklle.tasks.min-task-bytes": "32 MiB", "dasklle.tasks.memory-fraction": 0.0}
    with dask.config.set(small | {"dasklle.eigen.inverse-basis-bytes": 3 * basis * 500_000}):
        # large ranges on small workers: the configured bytes decide
        assert inverse_workers.columns_together(_Ranges(500_000), 41) == 3
    with dask.config.set(small | {"dasklle.eigen.inverse-basis-bytes": 1}):
        assert inverse_workers.columns_together(_Ranges(500_000), 41) == 1  # at least one
        # small ranges: what the task budget leaves beyond the range's own rows
        leaves = 32 * 2**20 - 1_000 * workers.RANGE_BYTES_PER_ROW
        assert inverse_workers.columns_together(_Ranges(1_000), 41) == leaves // (basis * 1_000)
    large = {"dasklle.tasks.min-task-bytes": "4 GiB", "dasklle.eigen.inverse-basis-bytes": 1}
    with dask.config.set(small | large):
        leaves = 4 * 2**30 - 500_000 * workers.RANGE_BYTES_PER_ROW
        assert inverse_workers.columns_together(_Ranges(500_000), 41) == leaves // (basis * 500_000)
