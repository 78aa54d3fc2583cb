import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from sklearn.manifold import LocallyLinearEmbedding as SklearnLLE
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from dasklle import LocallyLinearEmbedding, locally_linear_embedding
from dasklle.io.store import read_embedding

from .conftest import MANIFOLDS, integer_data, lowest_index_neighbors, manifold, max_sine

# Dense mode vs scikit-learn's dense LLE: the same linear algebra in a different order; measured
# sines are 1e-10..1e-7 and relative error differences 1e-11..1e-8; the bound held is 1e-6.
DENSE_MAX_SINE = 1e-6
DENSE_ERROR_RTOL = 1e-6
# Iterative solvers vs dense mode: the bound held.
ITERATIVE_MAX_SINE = 1e-4
# Iterative-solver settings under which the bound holds on these manifolds (amg: tol bounds
# the sine itself).
ITERATIVE = dict(tol=1e-6, max_iter=1000, random_state=0)


def dense(**params):
    return LocallyLinearEmbedding(eigen_solver="dense", neighbors_algorithm="brute", **params)


@pytest.mark.parametrize("name", MANIFOLDS)
@pytest.mark.parametrize("n_components", [2, 3])
def test_dense_mode_agrees_with_sklearn(name, n_components):
    X = manifold(name)
    ours = dense(n_neighbors=10, n_components=n_components).fit(X)
    theirs = SklearnLLE(n_neighbors=10, n_components=n_components, eigen_solver="dense").fit(X)
    assert max_sine(ours.embedding_, theirs.embedding_) <= DENSE_MAX_SINE
    np.testing.assert_allclose(
        ours.reconstruction_error_, theirs.reconstruction_error_, rtol=DENSE_ERROR_RTOL
    )


class LowestIndexNeighbors(NearestNeighbors):
    """scikit-learn's neighbor search with equal distances ranked by row index."""

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        assert X is not None and not return_distance  # the only call LLE makes
        return lowest_index_neighbors(X, self._fit_X, n_neighbors or self.n_neighbors)


def test_dense_mode_agrees_with_sklearn_on_integer_digits(monkeypatch):
    # Integer pixels tie many neighbor distances exactly. Among ties at the k-th distance,
    # scikit-learn's own search keeps whichever its heaps, chunk size and thread count leave (5
    # or 6 of these 800 rows get another set than by row index; its 1- and 2-thread runs differ
    # on 7), so scikit-learn's LLE runs here with the (distance, index) order of dasklle's.
    X = integer_data("digits")[:800]
    ours = dense(n_neighbors=10).fit(X)
    np.testing.assert_array_equal(ours.neighbor_indices_, lowest_index_neighbors(X, X, 11)[:, 1:])
    monkeypatch.setattr("sklearn.manifold._locally_linear.NearestNeighbors", LowestIndexNeighbors)
    theirs = SklearnLLE(n_neighbors=10, eigen_solver="dense").fit(X)
    assert max_sine(ours.embedding_, theirs.embedding_) <= DENSE_MAX_SINE
    np.testing.assert_allclose(
        ours.reconstruction_error_, theirs.reconstruction_error_, rtol=DENSE_ERROR_RTOL
    )


@pytest.fixture(scope="module")
def references():
    """Dense-mode embeddings of the three manifolds, computed once."""
    return {name: dense(n_neighbors=10).fit(manifold(name)).embedding_ for name in MANIFOLDS}


@pytest.mark.parametrize("name", MANIFOLDS)
@pytest.mark.parametrize("solver", ["arpack", "amg"])
def test_iterative_path_on_local_cluster(client, references, name, solver):
    X = da.from_array(manifold(name), chunks=(200, -1))
    model = LocallyLinearEmbedding(n_neighbors=10, eigen_solver=solver, **ITERATIVE).fit(X)
    assert model.eigen_solver_ == solver
    assert max_sine(model.embedding_, references[name]) <= ITERATIVE_MAX_SINE


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_iterative_path_on_local_schedulers(references, scheduler):
    X = da.from_array(manifold("swiss_roll"), chunks=(300, -1))
    with dask.config.set(scheduler=scheduler):
        model = LocallyLinearEmbedding(n_neighbors=10, eigen_solver="amg", **ITERATIVE).fit(X)
    assert max_sine(model.embedding_, references["swiss_roll"]) <= ITERATIVE_MAX_SINE


def test_numpy_dask_and_zarr_inputs_agree(tmp_path):
    X = manifold("s_curve")
    path = tmp_path / "x.zarr"
    zarr.create_array(store=str(path), data=X, chunks=(128, 3))
    inputs = {
        "numpy": X,
        "list": X.tolist(),
        "dask": da.from_array(X, chunks=(150, -1)),
        "zarr": zarr.open_array(str(path), mode="r"),
        "zarr path": str(path),
    }
    results = {
        kind: LocallyLinearEmbedding(n_neighbors=10, eigen_solver="arpack", random_state=0)
        .fit(value)
        .embedding_
        for kind, value in inputs.items()
    }
    for kind, embedding in results.items():
        np.testing.assert_allclose(embedding, results["numpy"], atol=1e-10, err_msg=kind)


@pytest.mark.parametrize("chunk_rows", [50, 173, 400, 10_000])
def test_chunk_size_does_not_change_the_result(references, chunk_rows):
    X = manifold("swiss_roll")
    model = dense(n_neighbors=10, chunk_rows=chunk_rows).fit(X)
    np.testing.assert_allclose(model.embedding_, references["swiss_roll"], atol=1e-10)


def test_dask_input_is_not_computed_whole(client):
    X = da.from_array(manifold("swiss_roll"), chunks=(100, -1))
    model = LocallyLinearEmbedding(n_neighbors=10, random_state=0).fit(X)
    # The client holds the (n, k) graph and the embedding, never a copy of X.
    assert model.neighbor_indices_.shape == (800, 10)
    assert isinstance(model._fit_X, da.Array)


def test_float32_stays_float32_and_integers_become_float64():
    X = manifold("swiss_roll", 300)
    assert LocallyLinearEmbedding(n_neighbors=8).fit_transform(X.astype(np.float32)).dtype == (
        np.float32
    )
    X_int = np.random.default_rng(0).integers(0, 100, size=(60, 3))
    assert LocallyLinearEmbedding(n_neighbors=10).fit_transform(X_int).dtype == np.float64


def test_function_form_matches_estimator():
    X = manifold("s_curve", 400)
    Y, error = locally_linear_embedding(X, n_neighbors=8, n_components=2, eigen_solver="dense")
    model = LocallyLinearEmbedding(n_neighbors=8, eigen_solver="dense").fit(X)
    np.testing.assert_allclose(Y, model.embedding_)
    assert error == model.reconstruction_error_


def test_fitted_attributes():
    X = manifold("swiss_roll", 300)
    model = LocallyLinearEmbedding(n_neighbors=8, n_components=2, eigen_solver="arpack").fit(X)
    assert model.embedding_.shape == (300, 2)
    assert model.eigenvalues_.shape == (2,)
    assert model.reconstruction_error_ == pytest.approx(model.eigenvalues_.sum())
    assert model.n_features_in_ == 3
    assert model.neighbor_indices_.shape == model.weights_.shape == (300, 8)
    np.testing.assert_allclose(model.weights_.sum(1), 1.0)
    assert model.eigen_solver_ == "arpack" and model.neighbors_algorithm_ == "kd_tree"
    assert model.eigen_residual_ < 1e-8
    assert set(model.timings_) == {"neighbors", "weights", "assemble", "eigen"}
    assert list(model.get_feature_names_out()) == [
        "locallylinearembedding0",
        "locallylinearembedding1",
    ]


def test_store_written_with_metadata(tmp_path):
    X = manifold("swiss_roll", 300)
    path = tmp_path / "out.zarr"
    model = LocallyLinearEmbedding(n_neighbors=8, store=str(path), random_state=0).fit(X)
    embedding, attributes = read_embedding(path)
    np.testing.assert_array_equal(embedding, model.embedding_)
    assert attributes["complete"] is True
    assert attributes["eigen_solver"] == model.eigen_solver_
    assert attributes["reconstruction_error"] == pytest.approx(model.reconstruction_error_)
    assert attributes["parameters"]["n_neighbors"] == 8
    assert attributes["dasklle_version"]
    assert len(attributes["eigenvalues"]) == 2


def test_pipeline():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(random_state=0)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("lle", LocallyLinearEmbedding(random_state=0)),
            ("knn", KNeighborsClassifier()),
        ]
    )
    assert pipe.fit(X, y).score(X, y) > 0.9


def test_neighbor_lists_stay_sorted_by_distance():
    from sklearn.neighbors import NearestNeighbors

    X = manifold("swiss_roll", 600)
    model = LocallyLinearEmbedding(n_neighbors=8).fit(X)
    exact = NearestNeighbors(n_neighbors=9).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    np.testing.assert_array_equal(model.neighbor_indices_, exact)
