import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from dasklle.assemble import cost_matrix, weight_matrix
from dasklle.eigen import choose_solver, null_space
from dasklle.weights import barycenter_weights_reference

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
    assert choose_solver("auto", 201, 3) == "arpack"
    assert choose_solver("auto", 200, 3) == "dense"
    # Many eigenvalues on a large problem stay on ARPACK (scikit-learn would go dense).
    assert choose_solver("auto", 5000, 13) == "arpack"
    # Large high-dimensional problems go to LOBPCG + AMG (ARPACK's factorisation fills in);
    # low-dimensional ones stay on ARPACK at any size.
    assert choose_solver("auto", 20_000, 3, n_features=784) == "amg"
    assert choose_solver("auto", 5000, 3, n_features=784) == "arpack"
    assert choose_solver("auto", 10**6, 3, n_features=3) == "arpack"


def test_coarse_start_is_close_and_amg_from_it_matches_dense(monkeypatch):
    """LOBPCG + AMG started from the subsample LLE reaches the dense answer."""
    import dask.array as da

    from dasklle import LocallyLinearEmbedding, coarse, datasets

    monkeypatch.setattr(coarse, "COARSE_ROWS", 400)
    monkeypatch.setattr(coarse, "COARSE_MIN_ROWS", 1000)
    X, _ = datasets.digits_784(1500, random_state=3)
    X = X.compute().astype(np.float64)
    dense = LocallyLinearEmbedding(
        n_neighbors=10, eigen_solver="dense", neighbors_algorithm="brute"
    ).fit(X)
    start = coarse.coarse_start(
        da.from_array(X, chunks=(500, -1)), 10, n_neighbors=10, reg=1e-3, random_state=0
    )
    assert start.shape == (1500, 10) and np.all(np.isfinite(start))
    # the start's span already holds most of the bottom eigenvectors
    assert max_sine(start, dense.embedding_) < 0.9
    amg = LocallyLinearEmbedding(
        n_neighbors=10,
        eigen_solver="amg",
        neighbors_algorithm="brute",
        random_state=0,
        tol=1e-8,
        max_iter=300,
    ).fit(X)
    assert "coarse start" in amg.timings_
    assert max_sine(amg.embedding_, dense.embedding_) < 1e-3
