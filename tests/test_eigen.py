import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from dasklle.eigen import choose_solver, null_space
from dasklle.eigen.cost import CostOperator, cost_matrix, weight_matrix
from dasklle.local.weights import barycenter_weights_reference

from .conftest import manifold, max_sine
from .test_neighbors import sklearn_neighbors

# Iterative solvers vs LAPACK on the same M: the bound for the sparse path.
ITERATIVE_MAX_SINE = 1e-4


def lle_cost_matrix(name: str, n: int = 800, k: int = 10):
    X = manifold(name, n)
    indices = sklearn_neighbors(X, k)
    return cost_matrix(weight_matrix(indices, barycenter_weights_reference(X, X, indices)))


@pytest.mark.parametrize("name", ["swiss_roll", "s_curve", "digits"])
@pytest.mark.parametrize("solver", ["arpack", "amg"])
def test_iterative_matches_dense(name, solver):
    M = lle_cost_matrix(name)
    dense = null_space(M, 2, solver="dense")
    found = null_space(M, 2, solver=solver, tol=1e-9, max_iter=1000, random_state=0)
    assert found.solver == solver
    assert max_sine(found.vectors, dense.vectors) <= ITERATIVE_MAX_SINE
    np.testing.assert_allclose(found.values, dense.values, rtol=1e-4, atol=1e-12)
    assert found.residual < 1e-8


def test_dense_skips_the_constant_vector():
    M = lle_cost_matrix("swiss_roll", 300)
    result = null_space(M, 2, solver="dense")
    assert result.solver == "dense"
    # The kept vectors are orthogonal to the constant vector.
    # (to LAPACK accuracy over the tiny gap between the bottom eigenvalues, ~1e-7 here)
    np.testing.assert_allclose(result.vectors.sum(0), 0.0, atol=1e-6)
    assert result.residual < 1e-10


def test_lobpcg_on_tiny_problems_runs_dense_and_says_so():
    M = lle_cost_matrix("swiss_roll", 40, k=5)
    assert null_space(M, 2, solver="amg").solver == "dense"


def test_unconverged_lobpcg_warns_with_residual():
    M = lle_cost_matrix("swiss_roll", 800)
    with pytest.warns(ConvergenceWarning, match="residual"):
        result = null_space(M, 2, solver="lobpcg", tol=1e-12, max_iter=2, random_state=0)
    assert np.isfinite(result.vectors).all()


def test_arpack_failure_is_a_value_error():
    M = lle_cost_matrix("swiss_roll", 300)
    with pytest.raises(ValueError, match="Error in determining null-space with ARPACK"):
        null_space(M * 0.0, 2, solver="arpack")


def test_auto_choice():
    assert choose_solver("auto", 201, 3) == "factored"
    assert choose_solver("auto", 200, 3) == "dense"
    # Many eigenvalues on a large problem stay on ARPACK (scikit-learn would go dense).
    assert choose_solver("auto", 5000, 13) == "factored"
    # Large high-dimensional problems go to LOBPCG + AMG (even the LU of I - W fills in);
    # low-dimensional ones stay on ARPACK through that LU at any size.
    assert choose_solver("auto", 20_000, 3, n_features=784) == "amg"
    assert choose_solver("auto", 5000, 3, n_features=784) == "factored"
    assert choose_solver("auto", 10**6, 3, n_features=3) == "factored"
    assert choose_solver("arpack", 10**6, 3, n_features=3) == "arpack"


def test_amg_on_a_larger_problem_uses_its_hierarchy_and_matches_dense():
    """Above the coarsest size (monkeypatched down), the V-cycle has two levels and LOBPCG still
    reaches the dense answer; with and without the kNN graph for the aggregates, and with M
    given as the matrix-free CostOperator."""
    from dasklle.eigen import multigrid

    X = manifold("digits", 1500)
    indices = sklearn_neighbors(X, 10)
    W = weight_matrix(indices, barycenter_weights_reference(X, X, indices))
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

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(multigrid, "COARSEST_ROWS", 300)
            patch.setattr(multigrid, "build_preconditioner", spy)
            found = null_space(
                operator, 2, solver="amg", tol=1e-9, max_iter=500, random_state=0, neighbors=graph
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
