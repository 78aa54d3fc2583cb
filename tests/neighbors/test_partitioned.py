"""The partitioned search: neighbors and weights solved inside partitions, through files or
through memory, and the fit that uses it above neighbors.projected-brute-max-rows."""

import dask
import dask.array as da
import numpy as np

from dasklle import datasets
from dasklle.neighbors import partitioned

from ..conftest import recall, sklearn_neighbors


def test_partitioned_graph_weights_and_recall(monkeypatch, tmp_path):
    """Neighbors and weights are solved inside partitions (no gather); the shuffle through
    scratch files and the one through memory give the same result, and the scratch files are
    removed."""
    from dasklle.local.weights import neighbor_weights

    X, _ = datasets.digits_784(3000, random_state=1)
    X = X.compute()
    dX = da.from_array(X, chunks=(700, -1))
    six_partitions = {"dasklle.neighbors.partition-rows": 1500}  # of ~1500 points
    with dask.config.set({**six_partitions, "temporary-directory": str(tmp_path)}):
        indices, weights, _ = partitioned.partitioned_graph(dX, 10, reg=1e-3, random_state=0)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(partitioned, "new_shuffle_directory", lambda: None)
    pass_per_partition = {"dasklle.neighbors.partition-group-bytes": 2**20}
    with dask.config.set({**six_partitions, **pass_per_partition}):
        in_memory = partitioned.partitioned_graph(dX, 10, reg=1e-3, random_state=0)
    np.testing.assert_array_equal(in_memory[0], indices)
    np.testing.assert_array_equal(in_memory[1], weights)
    # each point keeps the best of its 3 partitions' lists
    assert recall(indices, sklearn_neighbors(X, 10)) >= 0.95
    assert not (indices == np.arange(len(X))[:, None]).any()
    # the same weights as the gather path computes from the same neighbor lists
    expected = neighbor_weights(dX, indices, reg=1e-3).compute()
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)


def test_fit_uses_partitioned_graph_above_threshold():
    from dasklle import LocallyLinearEmbedding

    X, _ = datasets.digits_784(2000, random_state=2)
    X = X.compute()
    settings = {
        "dasklle.neighbors.projected-brute-max-rows": 1000,
        "dasklle.neighbors.partition-rows": 1500,
    }
    with dask.config.set(settings):
        model = LocallyLinearEmbedding(
            n_neighbors=10, neighbors_algorithm="projected", random_state=0
        ).fit(X)
        W = model.get_weight_matrix()
    assert model.neighbors_algorithm_ == "projected"
    assert recall(model.neighbor_indices_, sklearn_neighbors(X, 10)) >= 0.95
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    assert np.all(np.isfinite(model.embedding_))


def test_partitioned_graph_merges_copies_on_partition_boundaries(monkeypatch):
    """With many small partitions most points lie near a boundary and their neighbors are split
    among their partitions: each point keeps the k nearest of the union of its copies' lists
    (a single copy's list recalls 0.944 here), with the weights of those lists, whether the
    shuffle went through files (merged by the workers in ranges of 700 rows, weights solved
    again 700 rows at a time) or through memory (merged here)."""
    from dasklle.local.weights import neighbor_weights
    from dasklle.neighbors import copies

    X, _ = datasets.digits_784(3000, random_state=1)
    X = X.compute()
    dX = da.from_array(X, chunks=(700, -1))
    eighteen_partitions = {"dasklle.neighbors.partition-rows": 500}
    with dask.config.set(eighteen_partitions), monkeypatch.context() as patch:
        patch.setattr(copies, "rows_within", lambda *args, **kwargs: 700)
        indices, weights, _ = partitioned.partitioned_graph(dX, 10, reg=1e-3, random_state=0)
    assert recall(indices, sklearn_neighbors(X, 10)) >= 0.99
    expected = neighbor_weights(dX, indices, reg=1e-3).compute()
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-12)
    monkeypatch.setattr(partitioned, "new_shuffle_directory", lambda: None)
    with dask.config.set(eighteen_partitions):
        in_memory = partitioned.partitioned_graph(dX, 10, reg=1e-3, random_state=0)
    np.testing.assert_array_equal(in_memory[0], indices)
    np.testing.assert_allclose(in_memory[1], expected, rtol=0, atol=1e-12)
