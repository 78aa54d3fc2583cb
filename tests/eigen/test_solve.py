"""null_space and choose_solver: each solver against LAPACK, "auto"'s choice, the warnings."""

import dask
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from dasklle.eigen import choose_solver, null_space
from dasklle.eigen.cost import CostOperator, cost_matrix
from dasklle.eigen.lobpcg import STALL_ITERATIONS, Stall

from ..conftest import max_sine
from .conftest import ITERATIVE_MAX_SINE, lle_cost_matrix, random_weight_matrix


@pytest.mark.parametrize("name", ["swiss_roll", "s_curve", "digits"])
@pytest.mark.parametrize("solver", ["arpack", "amg"])
def test_iterative_matches_dense(name, solver):
    M = lle_cost_matrix(name)
    dense = null_space(M, 2, solver="dense")
    # arpack's tol is its relative accuracy; amg's, the bound on the subspace's sine
    tol = 1e-9 if solver == "arpack" else ITERATIVE_MAX_SINE / 10
    found = null_space(M, 2, solver=solver, tol=tol, max_iter=1000, random_state=0)
    assert found.solver == solver
    sine = max_sine(found.vectors, dense.vectors)
    assert sine <= ITERATIVE_MAX_SINE
    assert sine <= found.error_bound  # the bound holds
    np.testing.assert_allclose(found.values, dense.values, rtol=1e-4, atol=1e-12)
    assert found.residual < 1e-8


def test_amg_stops_at_its_bound_and_dense_bounds_itself():
    M = lle_cost_matrix("digits")
    dense = null_space(M, 2, solver="dense")
    assert dense.error_bound < 1e-8  # exact residuals over the exact gap
    loose = null_space(M, 2, solver="amg", tol=1e-2, random_state=0)
    tight = null_space(M, 2, solver="amg", tol=1e-6, random_state=0)
    assert loose.error_bound <= 1e-2 and tight.error_bound <= 1e-6
    assert loose.n_iter < tight.n_iter
    assert max_sine(loose.vectors, dense.vectors) <= loose.error_bound
    assert max_sine(tight.vectors, dense.vectors) <= tight.error_bound


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


def test_unconverged_amg_warns_with_its_bound_at_tol():
    M = lle_cost_matrix("digits")
    with pytest.warns(ConvergenceWarning, match=r"sine .* > tol = 1.0e-06"):
        result = null_space(M, 2, solver="amg", tol=1e-6, max_iter=3, random_state=0)
    assert result.error_bound > 1e-6


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
    assert choose_solver("auto", 201) == "factored"
    assert choose_solver("auto", 200) == "dense"
    # How many eigenvectors are wanted does not enter: many of them on a large problem stay on
    # ARPACK (scikit-learn would go dense).
    assert choose_solver("auto", 5000) == "factored"
    # Large high-dimensional problems go to LOBPCG + AMG (even the LU of I - W fills in);
    # low-dimensional ones stay on ARPACK through that LU at any size.
    assert choose_solver("auto", 20_000, n_features=784) == "amg"
    assert choose_solver("auto", 5000, n_features=784) == "factored"
    assert choose_solver("auto", 10**6, n_features=3) == "factored"
    assert choose_solver("arpack", 10**6, n_features=3) == "arpack"


def test_auto_choice_follows_the_configuration():
    with dask.config.set({"dasklle.eigen.dense-max-rows": 1000}):
        assert choose_solver("auto", 1000) == "dense"
    with dask.config.set({"dasklle.eigen.arpack-max-rows": 10_000}):
        assert choose_solver("auto", 10_000, n_features=784) == "factored"
    with dask.config.set({"dasklle.eigen.low-dimension": 2}):
        assert choose_solver("auto", 10**6, n_features=3) == "amg"


@pytest.mark.parametrize("solver", ["dense", "arpack", "lobpcg"])
def test_solvers_other_than_amg_take_the_operator(solver):
    W = random_weight_matrix(300, 8, np.random.default_rng(3))
    a = null_space(cost_matrix(W), 2, solver=solver, random_state=0, tol=1e-8, max_iter=500)
    b = null_space(
        CostOperator.from_weights(W), 2, solver=solver, random_state=0, tol=1e-8, max_iter=500
    )
    np.testing.assert_allclose(np.abs(a.vectors.T @ b.vectors), np.eye(2), atol=1e-5)


def test_amg_stops_with_a_warning_when_its_bound_stops_falling():
    """A tol below the floor that rounding sets on the bound: the solve stops once the bound
    has stopped falling, far short of max_iter, and says so; its vectors are converged."""
    M = lle_cost_matrix("digits")
    with pytest.warns(ConvergenceWarning, match="no longer falling.*larger tol"):
        result = null_space(M, 2, solver="amg", tol=1e-17, max_iter=1000, random_state=0)
    assert result.n_iter < 200 and result.error_bound > 1e-17
    assert max_sine(result.vectors, null_space(M, 2, solver="dense").vectors) <= 1e-6


def test_a_bound_that_keeps_falling_is_not_a_stall():
    stall = Stall()
    slow = 0.999 ** np.arange(3000)  # geometric, as LOBPCG's bound falls, however slowly
    assert not any(stall(bound) for bound in np.r_[[np.inf] * 50, slow])
    stall = Stall()
    floor = 1e-11 * (1 + 0.3 * np.random.default_rng(0).random(300))
    stops = [k for k, bound in enumerate(np.r_[0.1, 1e-5, floor]) if stall(bound)]
    assert stops and STALL_ITERATIONS < stops[0] < 60
