"""A fit whose eigen stage iterates on the workers keeps its neighbor lists, weights and B
there: the same results as a fit in this process, saved to and resumed from a store."""

import dask
import dask.array as da
import numpy as np
import pytest

from dasklle import LocallyLinearEmbedding
from dasklle.eigen import workers
from dasklle.eigen.cost import CostOperator, weight_matrix
from dasklle.eigen.kept import WorkerVectors
from dasklle.eigen.resident import ResidentOperator
from dasklle.eigen.rowblocks import RowBlocks
from dasklle.io.store import read_embedding

from ..conftest import manifold, max_sine, only_single_vectors_gathered

# the partitioned search from 300 rows on
PARTITIONED = {"dasklle.neighbors.projected-brute-max-rows": 300}
# both fits converge to a bound of 1e-6 on the sine
MAX_SINE = 1e-5


def test_B_on_the_workers_is_the_operator_in_the_client(client):
    rng = np.random.default_rng(0)
    n, k = 500, 6
    indices = np.array([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    weights = rng.random((n, k))
    M = CostOperator.from_weights(weight_matrix(indices, weights))
    X = rng.standard_normal((n, 3))
    built = [
        ResidentOperator.scattered(client, M),
        ResidentOperator.from_neighbors(client, indices, weights),
        ResidentOperator.from_neighbors(
            client, da.from_array(indices, chunks=120), da.from_array(weights, chunks=200)
        ),
    ]
    for resident in built:
        assert resident.shape == (n, n)
        assert abs(resident.gather().B - M.B).max() == 0
        np.testing.assert_allclose(resident.times_few(X), M.times_few(X), atol=1e-12)
    # a solve's setup reads the held rows without changing them
    workers.WorkerProblem(client, built[1], np.arange(n)[::-1].copy(), rng)
    assert abs(built[1].gather().B - M.B).max() == 0


def test_vectors_left_on_the_workers_reach_the_rows_order_with_their_signs(client):
    rng = np.random.default_rng(1)
    n = 700
    vectors = rng.standard_normal((n, 3))
    vectors[[5, 600], 1] = [-9.0, 9.0]  # a tie in magnitude: M's first row gives the sign
    vectors[40, 2] = -9.0
    order = rng.permutation(n)
    ranges = workers.rowblocks.Ranges.on(client, np.array([0, 250, 251, 700]))
    blocks = RowBlocks(ranges, ranges.scatter(np.split(vectors[order], [250, 251])), 3)
    kept = WorkerVectors(blocks, order, times=None)
    signs = kept.signs()
    np.testing.assert_array_equal(signs, np.sign(vectors[[np.abs(vectors[:, 0]).argmax(), 5, 40],
                                                        [0, 1, 2]]))  # fmt: skip
    assert signs[1] == -1 and signs[2] == -1
    placed = kept.in_row_order(np.array([2.0, -1.0]), chunk_rows=128)
    assert placed.chunks[0][0] == 128
    np.testing.assert_array_equal(placed.compute(), vectors[:, :2] * [2.0, -1.0])


@pytest.fixture(scope="module")
def data():
    return np.hstack([manifold("digits", 600)] * 2)  # 128 features: the partitioned search


OPTIONS = dict(
    n_neighbors=10, n_components=2, eigen_solver="amg", tol=1e-6, random_state=0,
    neighbors_algorithm="projected",
)  # fmt: skip


def test_a_fit_solved_on_the_workers_keeps_its_rows_there(client, data, tmp_path, monkeypatch):
    here = LocallyLinearEmbedding(**OPTIONS)
    with dask.config.set({**PARTITIONED, "dasklle.eigen.placement": "client"}):
        expected = here.fit_transform(data)
    there = LocallyLinearEmbedding(store=tmp_path / "fit.zarr", **OPTIONS)
    with dask.config.set({**PARTITIONED, "dasklle.eigen.placement": "workers"}):
        with monkeypatch.context() as guarded:
            only_single_vectors_gathered(guarded)
            there.fit(data)
    found = np.asarray(there.embedding_)
    assert here.eigen_placement_ == "client" and there.eigen_placement_ == "workers"
    # the embedding was written by the workers and is read from the store, with its signs
    assert isinstance(there.embedding_, da.Array)
    np.testing.assert_array_equal(found, read_embedding(tmp_path / "fit.zarr")[0])
    assert np.abs(found - expected).max() <= 1e-3 * np.abs(expected).max()
    assert isinstance(there.neighbor_indices_, da.Array) and isinstance(there.weights_, da.Array)
    np.testing.assert_array_equal(np.asarray(there.neighbor_indices_), here.neighbor_indices_)
    np.testing.assert_allclose(np.asarray(there.weights_), here.weights_, rtol=1e-12)
    assert abs(there.get_weight_matrix() - here.get_weight_matrix()).max() == 0
    assert max_sine(found, expected) <= MAX_SINE
    # the stored stages are read back on the workers: the same rows and embedding
    again = LocallyLinearEmbedding(store=tmp_path / "fit.zarr", **OPTIONS)
    with dask.config.set({**PARTITIONED, "dasklle.eigen.placement": "workers"}):
        resumed = again.fit_transform(data)
    assert isinstance(again.neighbor_indices_, da.Array) and isinstance(again.embedding_, da.Array)
    np.testing.assert_array_equal(np.asarray(again.neighbor_indices_), here.neighbor_indices_)
    np.testing.assert_array_equal(resumed, found)
    # without a store, the vectors are gathered: an ndarray, the same embedding
    alone = LocallyLinearEmbedding(**OPTIONS)
    with dask.config.set({**PARTITIONED, "dasklle.eigen.placement": "workers"}):
        alone.fit(data)
    assert isinstance(alone.embedding_, np.ndarray) and alone.eigen_placement_ == "workers"
    np.testing.assert_allclose(alone.embedding_, found, atol=1e-6 * np.abs(found).max())
