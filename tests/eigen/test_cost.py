"""W, M and the operators on M: against dense references, through scipy and the row kernels."""

import dask
import numpy as np
import pytest

from dasklle.eigen.cost import (
    CostOperator,
    chebyshev_step,
    cost_matrix,
    cost_matrix_reference,
    weight_matrix,
)

from .conftest import random_weight_matrix


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
    M = cost_matrix(random_weight_matrix(30, 5, np.random.default_rng(1)))
    np.testing.assert_allclose(M @ np.ones(30), 0.0, atol=1e-13)
    np.testing.assert_allclose((M - M.T).toarray(), 0.0, atol=1e-15)


def test_weight_matrix_leaves_neighbor_order_alone():
    indices = np.array([[2, 1], [2, 0], [1, 0]])
    weights = np.array([[0.7, 0.3], [0.6, 0.4], [0.9, 0.1]])
    before = indices.copy(), weights.copy()
    weight_matrix(indices, weights)
    np.testing.assert_array_equal(indices, before[0])
    np.testing.assert_array_equal(weights, before[1])


@pytest.fixture(params=["scipy", "row kernels"])
def products(request):
    """Run a test with CostOperator's products through scipy and through the row kernels."""
    if request.param == "scipy":
        yield request.param
        return
    with dask.config.set({"dasklle.eigen.row-kernel-min-rows": 0}):
        yield request.param


def test_cost_operator_is_m_without_forming_it(products):
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
    np.testing.assert_allclose(op @ np.asfortranarray(X), M @ X, atol=1e-12)
    np.testing.assert_allclose(op @ X[::2].repeat(2, axis=0), M @ X[::2].repeat(2, axis=0))


def test_cost_operator_with_more_rows_than_columns(products):
    rng = np.random.default_rng(4)
    B = rng.standard_normal((50, 30)) * (rng.random((50, 30)) < 0.2)
    op = CostOperator(B, shift=0.25)
    X = rng.standard_normal((30, 3))
    np.testing.assert_allclose(op @ X, B.T @ (B @ X) + 0.25 * X, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chebyshev_step(products, dtype):
    rng = np.random.default_rng(5)
    n = 80
    W = random_weight_matrix(n, 5, rng)
    op = CostOperator.from_weights(W).with_shift(0.1).astype(dtype)
    M = cost_matrix(W).toarray() + 0.1 * np.eye(n)
    step, residual, x = (rng.standard_normal((n, 3)).astype(dtype) for _ in range(3))
    d_inv = (1.0 / op.diagonal()).astype(dtype)
    expected_residual = residual - M @ step
    expected_step = 0.7 * step + 0.2 * d_inv[:, None] * expected_residual
    expected_x = x + expected_step
    chebyshev_step(op, step, residual, x, d_inv, 0.7, 0.2)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(residual, expected_residual, atol=tol)
    np.testing.assert_allclose(step, expected_step, atol=tol)
    np.testing.assert_allclose(x, expected_x, atol=tol)
