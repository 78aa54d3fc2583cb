"""ARPACK through the LU of I - W (dasklle.eigen.factored) against the dense reference."""

import warnings

import numpy as np
import pytest

from dasklle.eigen import factored, null_space, solve

from ..conftest import manifold, max_sine
from .conftest import cost_operator

# The factored solve reaches LAPACK's answer on M to this sine, as ARPACK on M itself does (the
# sines measured on these manifolds: docs/design/eigen.md).
FACTORED_MAX_SINE = 1e-6


@pytest.mark.parametrize("name", ["swiss_roll", "s_curve", "digits"])
@pytest.mark.parametrize("n_components", [2, 3])
def test_factored_arpack_matches_dense(name, n_components):
    op = cost_operator(manifold(name, 1000))
    dense = null_space(op.tocsr(), n_components, solver="dense")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to factorising M
        found = null_space(op, n_components, solver="factored", random_state=0)
    assert found.solver == "factored"
    assert found.n_iter is not None and found.n_iter > 0  # M^+ applications: the factored path
    assert max_sine(found.vectors, dense.vectors) <= FACTORED_MAX_SINE
    np.testing.assert_allclose(found.values, dense.values, rtol=1e-5, atol=1e-13)
    assert found.residual < 1e-10


def test_pseudo_inverse_solves_M_on_the_complement_of_the_constant():
    op = cost_operator(manifold("swiss_roll", 600))
    M = op.tocsr().toarray()
    inverse = factored.PseudoInverse(op.B, op.BT, rng=0)
    x = np.random.default_rng(1).standard_normal((600, 3))
    x -= x.mean(axis=0)
    y = inverse(x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12 * np.abs(y).max())
    np.testing.assert_allclose(M @ y, x, atol=1e-6 * np.abs(x).max())
    np.testing.assert_allclose(y, np.linalg.pinv(M) @ x, rtol=0, atol=1e-6 * np.abs(y).max())
    # one vector at a time gives the same
    np.testing.assert_allclose(inverse(x[:, 0]), y[:, 0], atol=1e-12 * np.abs(y).max())
    assert inverse.n_solves == 4


def test_disconnected_graph_factorises_M_as_scikit_learn_does():
    X = manifold("swiss_roll", 600)
    X[300:] += 1000.0  # two far-apart copies: the 10-NN graph has two components
    op = cost_operator(X)
    assert factored.graph_components(op.B) == 2
    result = null_space(op, 2, solver="factored", random_state=0)
    reference = null_space(op.tocsr(), 2, solver="arpack", random_state=0)
    assert result.n_iter is None and result.solver == "arpack"  # ARPACK on M
    np.testing.assert_allclose(result.values, reference.values, rtol=1e-8, atol=1e-14)


def test_failure_of_the_factored_path_falls_back_with_a_warning(monkeypatch):
    op = cost_operator(manifold("s_curve", 600))

    def fail(*args, **kwargs):
        raise RuntimeError("Factor is exactly singular")

    monkeypatch.setattr(factored, "bottom_eigenvectors", fail)
    with pytest.warns(RuntimeWarning, match="factorising M instead"):
        result = null_space(op, 2, solver="factored", random_state=0)
    dense = null_space(op.tocsr(), 2, solver="dense")
    assert result.n_iter is None
    assert max_sine(result.vectors, dense.vectors) <= FACTORED_MAX_SINE


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_poor_residual_also_falls_back(monkeypatch):
    op = cost_operator(manifold("s_curve", 600))
    monkeypatch.setattr(solve, "_accepted", lambda tol: 0.0)  # nothing is good enough
    with pytest.warns(RuntimeWarning, match="residual"):
        result = null_space(op, 2, solver="factored", random_state=0)
    assert result.n_iter is None


def test_weights_singular_beyond_the_constant_are_refused():
    """I - W with two null vectors on a weakly connected graph: two cycles, one row of the
    second also leaning on the first (its weights add e_0 - e_1, which both indicator vectors
    annihilate). The factored solve refuses it, so the caller falls back to ARPACK on M."""
    import scipy.sparse as sp

    n, half = 200, 100
    W = np.zeros((n, n))
    for start in (0, half):
        nodes = np.arange(start, start + half)
        W[nodes, np.roll(nodes, -1)] = 1.0
    W[half, 0], W[half, 1] = -0.5, 0.5
    assert factored.graph_components(sp.csr_array(np.eye(n) - W)) == 1
    with pytest.raises(RuntimeError, match="singular beyond the constant"):
        factored.PseudoInverse(sp.csr_array(np.eye(n) - W), rng=0)


def test_arpack_is_scikit_learns_and_raises_its_error_on_identical_points():
    """eigen_solver="arpack" factorises M, as scikit-learn does, and fails as it does."""
    from dasklle import LocallyLinearEmbedding

    model = LocallyLinearEmbedding(n_neighbors=2, n_components=1, eigen_solver="arpack")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="Error in determining null-space with ARPACK"):
            model.fit(np.ones((200, 3)))


def test_a_component_count_from_the_caller_is_not_recounted(monkeypatch):
    """The pipeline has counted the kNN graph's components already (check_connected)."""
    op = cost_operator(manifold("swiss_roll", 600))

    def recount(B):
        raise AssertionError("counted twice")

    monkeypatch.setattr(factored, "graph_components", recount)
    result = null_space(op, 2, solver="factored", random_state=0, n_graph_components=1)
    assert result.solver == "factored"
    disconnected = null_space(op, 2, solver="factored", random_state=0, n_graph_components=2)
    assert disconnected.solver == "arpack"
