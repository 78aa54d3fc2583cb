"""The "inverse" preconditioner of "amg": GMRES on blocks, the cycle for B, M^+ through B."""

import dask
import numpy as np
import pytest
import scipy.sparse as sp

from dasklle.eigen import amg, inverse, multigrid, null_space
from dasklle.eigen.cost import CostOperator

from ..conftest import manifold, max_sine
from .conftest import ITERATIVE_MAX_SINE, lle_weight_matrix


def _ordered(name: str, n: int, k: int = 10):
    """The CostOperator and kNN graph of LLE on a test manifold, rows in the solver's order."""
    W, indices = lle_weight_matrix(manifold(name, n), k)
    M, graph = CostOperator.from_weights(W), multigrid.knn_graph(indices, n)
    return amg._permuted(M, graph, amg._order(M, graph))


def test_gmres_solves_each_column_to_its_tolerance_and_a_zero_column_to_zero():
    rng = np.random.default_rng(0)
    A = sp.random_array((300, 300), density=0.02, random_state=1) + 4 * sp.eye_array(300)
    A = A.tocsr()
    b = rng.standard_normal((300, 3))
    b[:, 1] *= 1e6  # columns of very different sizes converge on their own scale
    b[:, 2] = 0.0
    x = inverse.gmres(lambda X: A @ X, lambda X: X / 4, b, 1e-10, restart=15, max_restarts=10)
    assert np.all(np.isfinite(x)) and np.all(x[:, 2] == 0)
    relative = np.linalg.norm(b - A @ x, axis=0)[:2] / np.linalg.norm(b[:, :2], axis=0)
    assert np.all(relative <= 1e-10), relative
    # a nonsymmetric A (GMRES, not CG): the same answer as a direct solve
    np.testing.assert_allclose(x[:, 0], sp.linalg.spsolve(A.tocsc(), b[:, 0]), rtol=1e-6)


def _steps_to(rtol, solve):
    """The GMRES steps ``solve()`` takes, and its answer."""
    steps = []
    original = inverse._arnoldi

    def spy(*args, **kwargs):
        V, H, g = original(*args, **kwargs)
        steps.append(H.shape[2])
        return V, H, g

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inverse, "_arnoldi", spy)
        answer = solve()
    return sum(steps), answer


def test_the_cycle_for_b_makes_gmres_converge_in_few_steps():
    """The cycle for B (two levels, or three where the coarse level's LU would not fit) as
    GMRES' preconditioner: B's systems solved to 1e-6 in under 80 steps, where GMRES without it
    has not converged after 400; u spans B^T's null space. With three levels, the coarse level
    solved by two cycles (a W-cycle) takes fewer steps than by one."""
    M, graph = _ordered("digits", 1500)
    b = M.B @ np.random.default_rng(1).standard_normal((1500, 2))  # in B's range
    # the coarse level (about 60 rows) factored: it is small, or its LU fits the bytes; or not
    cases = ((1000, "1 KiB", 2, 2), (30, "1 MiB", 2, 2), (30, "1 KiB", 2, 3), (30, "1 KiB", 1, 3))
    taken = []
    for coarse_rows, coarse_bytes, cycles, levels in cases:
        settings = {
            "inverse-coarse-rows": coarse_rows,
            "inverse-coarse-bytes": coarse_bytes,
            "inverse-coarse-cycles": cycles,
        }
        with dask.config.set({f"dasklle.eigen.{key}": value for key, value in settings.items()}):
            T = inverse.InverseOfM(M.B, graph, np.random.default_rng(0))
            steps, x = _steps_to(1e-6, lambda T=T: T._solve(b, False, 1e-6))
        assert len(T.cycle.prolongators) + 1 == levels
        assert np.linalg.norm(T.BT @ T.left_null) <= 1e-6
        assert np.linalg.norm(b - M.B @ x) <= 1e-6 * np.linalg.norm(b) and steps <= 80, steps
        taken.append(steps)
    assert taken[2] < taken[3], taken
    plain = inverse.gmres(lambda X: M.B @ X, lambda X: X, b, 1e-6, restart=40, max_restarts=10)
    assert np.linalg.norm(b - M.B @ plain) > 1e-6 * np.linalg.norm(b)


def test_inverse_of_m_maps_m_times_the_bottom_eigenvectors_back_to_them():
    """T (M v) ~ v for M's bottom eigenvectors v, which a cycle for M cannot do (its T M v is
    dominated by high modes: docs/design/eigen.md)."""
    M, graph = _ordered("swiss_roll", 1500)
    dense = null_space(M.tocsr(), 2, solver="dense")
    T = inverse.InverseOfM(M.B, graph, np.random.default_rng(0))
    mapped = T(M @ dense.vectors)
    assert max_sine(mapped, dense.vectors) <= 0.05


@pytest.mark.filterwarnings("error::dasklle.exceptions.FallbackWarning")  # the inverse runs
@pytest.mark.parametrize("name", ["digits", "swiss_roll"])
def test_amg_with_the_inverse_matches_dense_in_a_few_iterations(name):
    W, indices = lle_weight_matrix(manifold(name, 2000), 10)
    M = CostOperator.from_weights(W)
    dense = null_space(M.tocsr(), 2, solver="dense")
    three_levels = {"inverse-coarse-rows": 50, "inverse-coarse-bytes": 0}
    with dask.config.set({f"dasklle.eigen.{key}": value for key, value in three_levels.items()}):
        found = null_space(M, 2, solver="amg", tol=1e-6, random_state=0, neighbors=indices)
    assert found.n_iter <= 20 and found.error_bound <= 1e-6
    assert max_sine(found.vectors, dense.vectors) <= ITERATIVE_MAX_SINE


def test_the_inverse_runs_only_where_b_has_one_left_null_vector():
    """A connected kNN graph given through B: the inverse; a disconnected one (B^T has a null
    vector per component), M as a matrix or no graph for the aggregates: the cycle for M."""
    X = manifold("swiss_roll", 600)
    W, indices = lle_weight_matrix(X, 10)
    M = CostOperator.from_weights(W)
    assert amg.inverts(M, indices) and amg.inverts(M, indices, n_graph_components=1)
    assert not amg.inverts(M.tocsr(), indices) and not amg.inverts(M, None)
    with dask.config.set({"dasklle.eigen.preconditioner": "cycle"}):
        assert not amg.inverts(M, indices)
    W2, indices2 = lle_weight_matrix(np.vstack([X, X + 1000.0]), 10)
    assert not amg.inverts(CostOperator.from_weights(W2), indices2)  # two components, counted
    # and what null_space runs: a block of the wanted vectors and 2 more with the inverse
    found = null_space(M, 2, solver="amg", tol=1e-6, random_state=0, neighbors=indices)
    assert len(found.beyond) <= 2 and found.n_iter <= 20


def test_a_cycle_for_b_that_does_not_converge_falls_back_to_the_cycle_for_m(monkeypatch):
    """Where GMRES with the cycle for B stagnates (u's residual tells), amg warns and iterates
    with the cycle for M on the wider block it needs, and still reaches the dense answer."""
    from dasklle.exceptions import FallbackWarning

    W, indices = lle_weight_matrix(manifold("swiss_roll", 1500), 10)
    M = CostOperator.from_weights(W)
    monkeypatch.setattr(inverse, "CONVERGED_NULL", 0.0)  # no u is that good
    expected = r"residual \S+ > 0e\+00; the largest w_ij \* w_ji is 0\.\d+: .*cycle for M"
    with pytest.warns(FallbackWarning, match=expected):
        found = null_space(M, 2, solver="amg", tol=1e-6, random_state=0, neighbors=indices)
    assert len(found.beyond) == 8  # the block of the cycle for M
    dense = null_space(M.tocsr(), 2, solver="dense")
    assert max_sine(found.vectors, dense.vectors) <= ITERATIVE_MAX_SINE


def test_mutual_weight_finds_points_that_reconstruct_each_other():
    """The fallback's diagnosis: the largest w_ij w_ji, checked against the weights themselves;
    near-copies of points (each the other's best reconstruction) push it towards 1."""
    X = manifold("swiss_roll", 1500)
    for data in (X, np.vstack([X, X + 1e-4 * np.random.default_rng(1).standard_normal(X.shape)])):
        W, indices = lle_weight_matrix(data, 10)
        B = sp.csr_array(sp.identity(W.shape[0]) - W)
        largest, Wd = inverse.mutual_weight(B, B.T.tocsr()), W.toarray()
        assert largest == pytest.approx((Wd * Wd.T).max(), rel=1e-12)
    assert largest > 0.9
