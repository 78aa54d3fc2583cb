"""The "amg" solver: its multigrid hierarchy, its smoother's interval, its answer."""

import dask
import numpy as np
import pytest

from dasklle.eigen import multigrid, null_space
from dasklle.eigen.cost import CostOperator, cost_matrix

from ..conftest import manifold, max_sine
from .conftest import ITERATIVE_MAX_SINE, lle_cost_matrix, lle_weight_matrix


def test_amg_on_a_larger_problem_uses_its_hierarchy_and_matches_dense():
    """Above the coarsest size (configured down), the V-cycle has two levels and LOBPCG still
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
            dask.config.set({"dasklle.eigen.coarsest-rows": 300}),
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
