"""The "amg" solver: its multigrid hierarchy, its smoother's interval, its answer."""

import dask
import numpy as np
import pytest

from dasklle.eigen import multigrid, null_space
from dasklle.eigen.cost import CostOperator, cost_matrix

from ..conftest import manifold, max_sine
from .conftest import ITERATIVE_MAX_SINE, lle_cost_matrix, lle_weight_matrix


def test_amg_on_a_larger_problem_uses_its_hierarchy_and_matches_dense():
    """Above the coarsest size (configured down), the V-cycle for M has two levels and LOBPCG still
    reaches the dense answer; with and without the kNN graph for the aggregates, and with M
    given as the matrix-free CostOperator."""
    W, indices = lle_weight_matrix(manifold("digits", 1500), 10)
    M = cost_matrix(W)
    dense = null_space(M, 2, solver="dense")
    # the matrix, and the operator through I - W that the pipeline passes (M never formed)
    for graph, operator in ((indices, M), (None, M), (indices, CostOperator.from_weights(W))):
        sizes = []
        original = multigrid.build_preconditioner

        def spy(*args, _original=original, _sizes=sizes, **kwargs):
            preconditioner = _original(*args, **kwargs)
            _sizes.extend(preconditioner.sizes)
            return preconditioner

        with (
            pytest.MonkeyPatch.context() as patch,
            dask.config.set(
                {"dasklle.eigen.coarsest-rows": 300, "dasklle.eigen.preconditioner": "cycle"}
            ),
        ):
            patch.setattr(multigrid, "build_preconditioner", spy)
            found = null_space(
                operator, 2, solver="amg", tol=1e-6, max_iter=500, random_state=0, neighbors=graph
            )
        assert len(sizes) >= 2 and sizes[0] == 1500 and sizes[-1] <= 300
        assert found.residual < 1e-8
        assert max_sine(found.vectors, dense.vectors) <= ITERATIVE_MAX_SINE


def test_chebyshev_interval_covers_the_spectrum():
    """The smoother's upper bound lies above D^-1 A's largest eigenvalue (an underestimate makes
    the smoother diverge on the top modes)."""
    import scipy.linalg

    from dasklle.eigen.multigrid import _spectral_radius

    M = lle_cost_matrix("digits", 600)
    A = M + 1e-5 * np.eye(600)
    D = np.diag(A.diagonal() ** -0.5)
    exact = scipy.linalg.eigvalsh(D @ np.asarray(A) @ D)[-1]
    estimate = _spectral_radius(A.tocsr() if hasattr(A, "tocsr") else A, np.random.default_rng(0))
    assert exact * 0.999 <= estimate <= exact * 1.001


def test_the_k_cycle_stays_finite_on_nearly_solved_columns():
    """LOBPCG's residuals of converged columns are tiny; in the float32 cycle the K-cycle's
    coefficients of such columns underflowed (0 / 0) and put NaN into the block."""
    from dasklle.eigen.amg import _order, _permuted, _preconditioner

    W, indices = lle_weight_matrix(manifold("swiss_roll", 1500), 10)
    M, graph = cost_matrix(W), multigrid.knn_graph(indices, 1500)
    M, graph = _permuted(M, graph, _order(M, graph))
    settings = {"dasklle.eigen.coarsest-rows": 20, "dasklle.eigen.preconditioner": "cycle"}
    with dask.config.set(settings):
        cycle = _preconditioner(M, graph, np.random.default_rng(0))
    assert cycle.krylov and len(cycle.sizes) >= 3  # a level that takes the K-cycle's steps
    block = np.random.default_rng(1).standard_normal((1500, 4))
    block *= np.array([1.0, 1e-18, 1e-30, 0.0])  # below float32's range in the last two
    out = cycle(block)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 3], 0.0)
    # the correction of a scaled column is the scaled correction (the cycle is linear in b)
    np.testing.assert_allclose(out[:, 1] * 1e18, cycle(block[:, 1:2] * 1e18)[:, 0], rtol=1e-3)


def test_every_node_is_in_an_aggregate():
    """Nodes without an edge (a row whose neighbors all lie outside its range) get aggregates
    of their own: the map keeps the constant vector, B's null vector."""
    import scipy.sparse as sp

    from dasklle.eigen.multigrid import aggregation

    path = sp.diags_array([np.ones(5), np.ones(5)], offsets=[-1, 1], shape=(6, 6))
    graph = sp.block_diag([path, sp.csr_array((2, 2))], format="csr")  # nodes 6, 7 alone
    P = aggregation(graph)
    np.testing.assert_array_equal(P @ np.ones(P.shape[1]), np.ones(8))
    assert P[[6], :].nnz == 1 and P[[7], :].nnz == 1 and P[6, :].argmax() != P[7, :].argmax()


def test_strongest_edges_keeps_each_nodes_heaviest_edges_both_ways():
    """Each node keeps its k heaviest edges, and an edge kept by either end stays: the result
    is symmetric, no heavier edge of a node is dropped for a lighter one, and nothing is
    added."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    graph = sp.random_array((300, 300), density=0.1, random_state=1, data_sampler=rng.random)
    graph = sp.csr_array(graph + graph.T)
    graph.setdiag(0)
    graph.eliminate_zeros()
    kept = multigrid.strongest_edges(graph, 4)
    assert (kept != kept.T).nnz == 0 and (kept != kept.multiply(graph > 0)).nnz == 0
    for node in range(300):
        row, mine = graph[[node], :].toarray().ravel(), kept[[node], :].toarray().ravel()
        heaviest = np.sort(row[row > 0])[::-1][:4]
        assert np.all(np.isin(heaviest, mine[mine > 0]))  # its own k
    assert kept.nnz < graph.nnz / 2
