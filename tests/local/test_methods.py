"""The four LLE variants: dense mode against scikit-learn, the sparse path against dense mode."""

import dask.array as da
import numpy as np
import pytest
from sklearn.manifold import LocallyLinearEmbedding as SklearnLLE

from dasklle import LocallyLinearEmbedding
from dasklle.eigen.cost import alignment_matrix, cost_matrix, weight_matrix
from dasklle.local.methods import standard_local

from ..conftest import MANIFOLDS, manifold, max_sine

# Measured sines against scikit-learn: 1e-14 .. 1e-7 (bound held: 1e-6).
DENSE_MAX_SINE = 1e-6
# Reconstruction errors agree to 1e-6 relative, or to 1e-12 absolute where both are round-off
# (LTSA and HLLE with more components than the manifold's dimension give sums of ~1e-15).
ERROR_RTOL, ERROR_ATOL = 1e-6, 1e-12
ITERATIVE_MAX_SINE = 1e-4
OTHER_METHODS = ("hessian", "modified", "ltsa")


@pytest.mark.parametrize("name", MANIFOLDS)
@pytest.mark.parametrize("method", OTHER_METHODS)
@pytest.mark.parametrize("n_components", [2, 3])
def test_dense_mode_agrees_with_sklearn(name, method, n_components):
    X = manifold(name, 600)
    params = dict(n_neighbors=12, n_components=n_components, method=method, eigen_solver="dense")
    ours = LocallyLinearEmbedding(neighbors_algorithm="brute", **params).fit(X)
    theirs = SklearnLLE(**params).fit(X)
    assert max_sine(ours.embedding_, theirs.embedding_) <= DENSE_MAX_SINE
    np.testing.assert_allclose(
        ours.reconstruction_error_, theirs.reconstruction_error_, rtol=ERROR_RTOL, atol=ERROR_ATOL
    )


@pytest.mark.parametrize("name", MANIFOLDS)
@pytest.mark.parametrize("method", OTHER_METHODS)
def test_sparse_path_on_local_cluster_agrees_with_dense(client, name, method):
    X = manifold(name, 600)
    params = dict(n_neighbors=12, method=method, random_state=0)
    reference = LocallyLinearEmbedding(eigen_solver="dense", **params).fit(X)
    sparse = LocallyLinearEmbedding(eigen_solver="amg", tol=1e-6, max_iter=1000, **params)
    sparse.fit(da.from_array(X, chunks=(150, -1)))
    assert sparse.eigen_solver_ == "amg"
    assert max_sine(sparse.embedding_, reference.embedding_) <= ITERATIVE_MAX_SINE


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_chunking_does_not_change_m(method):
    X = manifold("s_curve", 400)
    matrices = [
        LocallyLinearEmbedding(n_neighbors=10, method=method, chunk_rows=rows, eigen_solver="dense")
        .fit(X)
        .get_cost_matrix()
        for rows in (64, 400)
    ]
    np.testing.assert_allclose(matrices[0].toarray(), matrices[1].toarray(), atol=1e-12)


def test_standard_in_alignment_form_equals_cost_matrix():
    rng = np.random.default_rng(0)
    indices = np.array(
        [rng.choice(np.delete(np.arange(20), i), 4, replace=False) for i in range(20)]
    )
    w = rng.random(indices.shape)
    w /= w.sum(1, keepdims=True)
    sets = np.hstack([np.arange(20)[:, None], indices])
    M = alignment_matrix(sets, standard_local(w), 20)
    np.testing.assert_allclose(
        M.toarray(), cost_matrix(weight_matrix(indices, w)).toarray(), atol=1e-14
    )


def test_spectrum_and_matrices():
    from dasklle import datasets

    X, labels = datasets.digits_784(600, random_state=0)
    X, labels = X.compute(), labels.compute()
    model = LocallyLinearEmbedding(n_neighbors=10, n_eigenvalues=12, random_state=0).fit(X)
    assert model.embedding_.shape == (600, 2)
    assert model.eigenvalues_.shape == (12,)
    assert np.all(np.diff(model.eigenvalues_) >= -1e-12)
    assert model.reconstruction_error_ == pytest.approx(model.eigenvalues_[:2].sum())
    W, M = model.get_weight_matrix(), model.get_cost_matrix()
    assert W.shape == M.shape == (600, 600)
    np.testing.assert_allclose(W.sum(1), 1.0)
    # M's bottom eigenvectors are the embedding: M y = lambda y (to float32 round-off, ~1e-7,
    # since digits-784 is float32 and so is its embedding).
    Y = model.embedding_.astype(np.float64)
    assert np.abs(M @ Y - Y * model.eigenvalues_[:2]).max() < 1e-6
    # M couples neighbors, and neighbors tend to share a label: M's weight concentrates in
    # same-label blocks (the analysis the classic notebooks do with M ordered by label).
    # Measured 57% of the off-diagonal weight on 600 deformed digits; chance would be ~10%.
    coo = M.tocoo()
    off = coo.row != coo.col
    same = labels[coo.row[off]] == labels[coo.col[off]]
    assert np.abs(coo.data[off][same]).sum() > 0.4 * np.abs(coo.data[off]).sum()
    hessian = LocallyLinearEmbedding(n_neighbors=10, method="ltsa").fit(X[:200])
    assert hessian.weights_ is None
    assert hessian.get_cost_matrix().shape == (200, 200)
    with pytest.raises(ValueError, match="method='standard'"):
        hessian.get_weight_matrix()
