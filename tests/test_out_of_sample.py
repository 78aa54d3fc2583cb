"""transform (new points into the embedding) and inverse_transform (embedding back to input)."""

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from sklearn.neighbors import NearestNeighbors

from dasklle import LocallyLinearEmbedding
from dasklle.local.weights import barycenter_weights_reference

from .conftest import manifold


@pytest.fixture(scope="module")
def fitted():
    X = manifold("swiss_roll", 1500)
    return X, LocallyLinearEmbedding(n_neighbors=12, random_state=0).fit(X)


def dense_out_of_sample(Q, reference, values, k, reg=1e-3):
    """The same construction in plain NumPy, one point at a time."""
    indices = NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(Q, return_distance=False)
    w = barycenter_weights_reference(Q, reference, indices, reg)
    return np.einsum("ik,ikd->id", w, values[indices])


def spacing(X):
    """Median distance from a point to its nearest other point."""
    d, _ = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X)
    return float(np.median(d[:, 1]))


def test_transform_reproduces_training_embedding(fitted):
    X, model = fitted
    # A new point equal to a training point lands exactly on that point's image.
    np.testing.assert_array_equal(model.transform(X), model.embedding_)


def test_transform_of_noisy_points_stays_close(fitted):
    X, model = fitted
    noisy = X + 0.1 * spacing(X) * np.random.default_rng(1).standard_normal(X.shape)
    moved = np.linalg.norm(model.transform(noisy) - model.embedding_, axis=1)
    # Noise of a tenth of the point spacing moves images by a small fraction of the image
    # spacing (measured median ~0.05).
    assert np.median(moved) < 0.2 * spacing(model.embedding_)


def test_transform_matches_dense_numpy(fitted):
    X, model = fitted
    Q = X[:200] + 0.3 * spacing(X)
    expected = dense_out_of_sample(Q, X, model.embedding_, model.n_neighbors)
    np.testing.assert_allclose(model.transform(Q), expected, rtol=1e-8, atol=1e-12)


def test_transform_is_lazy_and_chunked_for_dask_and_zarr(fitted, tmp_path):
    X, model = fitted
    Q = X[:300] + 0.01
    path = tmp_path / "q.zarr"
    zarr.create_array(store=str(path), data=Q, chunks=(100, 3))
    lazy = model.transform(da.from_array(Q, chunks=(70, -1)))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), model.transform(Q))
    np.testing.assert_allclose(model.transform(str(path)).compute(), model.transform(Q))


def test_inverse_transform_matches_dense_numpy(fitted):
    X, model = fitted
    Y = model.embedding_[:200] * 1.01
    expected = dense_out_of_sample(Y, model.embedding_, X, model.n_neighbors)
    np.testing.assert_allclose(model.inverse_transform(Y), expected, rtol=1e-8, atol=1e-10)
    lazy = model.inverse_transform(da.from_array(Y, chunks=(64, -1)))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-8, atol=1e-10)


def test_inverse_of_transform_is_close_on_a_smooth_manifold(fitted):
    X, model = fitted
    np.testing.assert_array_equal(model.inverse_transform(model.embedding_), X)
    noisy = X + 0.05 * spacing(X) * np.random.default_rng(2).standard_normal(X.shape)
    back = model.inverse_transform(model.transform(noisy))
    error = np.linalg.norm(back - X, axis=1)
    # Both maps are piecewise-linear interpolations over k = 12 neighbors, so the round trip
    # lands within about one point spacing of the original (LLE's embedding of the roll is
    # stretched, so neighbors in the embedding can be a spacing or two apart in input space).
    # Measured median 0.4 spacings; bound 1 spacing for the median, 5 for the 95th percentile.
    assert np.median(error) < 1.0 * spacing(X)
    assert np.quantile(error, 0.95) < 5.0 * spacing(X)


def test_out_of_core_training_data_is_read_from_the_store(tmp_path):
    X = manifold("s_curve", 800)
    path = tmp_path / "x.zarr"
    zarr.create_array(store=str(path), data=X, chunks=(200, 3))
    model = LocallyLinearEmbedding(n_neighbors=10, random_state=0).fit(str(path))
    in_memory = LocallyLinearEmbedding(n_neighbors=10, random_state=0).fit(X)
    Y = in_memory.embedding_[:50]
    np.testing.assert_allclose(model.inverse_transform(Y), in_memory.inverse_transform(Y))


def test_inverse_transform_checks_width(fitted):
    _, model = fitted
    with pytest.raises(ValueError, match="2-dimensional embedding"):
        model.inverse_transform(np.ones((3, 3)))


@pytest.mark.parametrize("algorithm", ["kd_tree", "brute"])
def test_index_stays_on_cluster_and_pickles(cluster, algorithm):
    import pickle

    from distributed import Client

    X = manifold("swiss_roll", 600)
    Q = X[:40] + 0.01
    model = LocallyLinearEmbedding(n_neighbors=10, neighbors_algorithm=algorithm, random_state=0)
    with Client(cluster):
        model.fit(da.from_array(X, chunks=(150, -1)))
        on_cluster = model.transform(Q)
        copy = pickle.loads(pickle.dumps(model))
    # The client is closed: the copy must not need the cluster the model was fitted on.
    with dask.config.set(scheduler="threads"):
        np.testing.assert_allclose(copy.transform(Q), on_cluster)


def test_transform_searches_the_fits_partitions(tmp_path):
    """After a partitioned fit, new points are searched in the fit's partitions (kept as files,
    removed with the model), not against every training row; the result matches the exact
    construction wherever the partitions found the exact neighbors."""
    import gc

    from dasklle import datasets

    X = datasets.digits_784(3600, random_state=1)[0].compute()
    train, new = X[:3000], X[3000:]
    settings = {
        "dasklle.neighbors.projected-brute-max-rows": 1000,
        "dasklle.neighbors.partition-rows": 1500,  # 6 partitions of ~1500 points
        "temporary-directory": str(tmp_path),
    }
    with dask.config.set(settings):
        model = LocallyLinearEmbedding(
            n_neighbors=10, neighbors_algorithm="projected", random_state=0
        ).fit(train)
        assert model._neighbor_index.algorithm == "partitioned"
        assert len(list(tmp_path.iterdir())) == 1  # the partitions, kept for transform
        np.testing.assert_array_equal(model.transform(train[:200]), model.embedding_[:200])
        Y = model.transform(new)
        found, _ = model._neighbor_index.query_with_weights(
            da.from_array(new, chunks=200), 10, 1e-3
        )
    exact = NearestNeighbors(n_neighbors=10).fit(train).kneighbors(new, return_distance=False)
    shared = np.array([len(set(a) & set(b)) for a, b in zip(found, exact, strict=True)])
    # the recall the fit's own search reaches (tests/neighbors/test_partitioned.py)
    assert shared.mean() / 10 >= 0.95
    same = shared == 10
    expected = dense_out_of_sample(new, train, model.embedding_.astype(np.float64), 10)
    np.testing.assert_allclose(Y[same], expected[same], atol=1e-5)
    del model
    gc.collect()
    assert list(tmp_path.iterdir()) == []
