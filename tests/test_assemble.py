import numpy as np

from dasklle.assemble import cost_matrix, cost_matrix_reference, weight_matrix


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
