import numpy as np
import pytest

from dasklle.assemble import CostOperator, cost_matrix, cost_matrix_reference, weight_matrix
from dasklle.eigen import null_space


def test_sparse_cost_matrix_matches_dense():
    rng = np.random.default_rng(0)
    indices = np.array([[1, 2], [0, 2], [0, 1], [1, 2]])
    weights = rng.random(indices.shape)
    W = weight_matrix(indices, weights)
    dense_W = np.zeros((4, 4))
    for i, row in enumerate(indices):
        dense_W[i, row] = weights[i]
    np.testing.assert_allclose(W.toarray(), dense_W)
    np.testing.assert_allclose(cost_matrix(W).toarray(), cost_matrix_reference(dense_W), atol=1e-14)


def test_rows_summing_to_one_give_constant_null_vector():
    rng = np.random.default_rng(1)
    indices = np.array(
        [rng.choice(np.delete(np.arange(30), i), 5, replace=False) for i in range(30)]
    )
    weights = rng.random(indices.shape)
    weights /= weights.sum(1, keepdims=True)
    M = cost_matrix(weight_matrix(indices, weights))
    np.testing.assert_allclose(M @ np.ones(30), 0.0, atol=1e-13)
    np.testing.assert_allclose((M - M.T).toarray(), 0.0, atol=1e-15)


def test_weight_matrix_leaves_neighbor_order_alone():
    indices = np.array([[2, 1], [2, 0], [1, 0]])
    weights = np.array([[0.7, 0.3], [0.6, 0.4], [0.9, 0.1]])
    before = indices.copy(), weights.copy()
    weight_matrix(indices, weights)
    np.testing.assert_array_equal(indices, before[0])
    np.testing.assert_array_equal(weights, before[1])


def random_weight_matrix(n: int, k: int, rng):
    """W of a random k-neighbor graph on n points, each row summing to one."""
    indices = np.array([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    weights = rng.random(indices.shape)
    return weight_matrix(indices, weights / weights.sum(1, keepdims=True))


def test_cost_operator_is_m_without_forming_it():
    rng = np.random.default_rng(2)
    n = 60
    W = random_weight_matrix(n, 6, rng)
    M = cost_matrix(W).toarray()
    op = CostOperator.from_weights(W)
    X = rng.standard_normal((n, 4))
    assert op.shape == (n, n)
    np.testing.assert_allclose(op @ X, M @ X, atol=1e-12)
    np.testing.assert_allclose(op @ X[:, 0], M @ X[:, 0], atol=1e-12)
    np.testing.assert_allclose(op.diagonal(), np.diag(M), atol=1e-12)
    np.testing.assert_allclose(op.tocsr().toarray(), M, atol=1e-12)
    shifted = op.with_shift(0.5)
    np.testing.assert_allclose(shifted @ X, M @ X + 0.5 * X, atol=1e-12)
    np.testing.assert_allclose(shifted.diagonal(), np.diag(M) + 0.5, atol=1e-12)
    np.testing.assert_allclose(shifted.tocsr().toarray(), M + 0.5 * np.eye(n), atol=1e-12)
    order = rng.permutation(n)
    np.testing.assert_allclose(op.permuted(order).tocsr().toarray(), M[order][:, order], atol=1e-12)
    single = op.astype(np.float32)
    assert (single @ X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(single @ X.astype(np.float32), M @ X, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("solver", ["dense", "arpack", "lobpcg"])
def test_solvers_other_than_amg_take_the_operator(solver):
    W = random_weight_matrix(300, 8, np.random.default_rng(3))
    a = null_space(cost_matrix(W), 2, solver=solver, random_state=0, tol=1e-8, max_iter=500)
    b = null_space(
        CostOperator.from_weights(W), 2, solver=solver, random_state=0, tol=1e-8, max_iter=500
    )
    np.testing.assert_allclose(np.abs(a.vectors.T @ b.vectors), np.eye(2), atol=1e-5)
