"""A fit whose eigen stage iterates on the workers keeps its neighbor lists, weights and B
there: the same results as a fit in this process, saved to and resumed from a store."""

import dask
import dask.array as da
import numpy as np
import pytest

from dasklle import LocallyLinearEmbedding
from dasklle.eigen import workers
from dasklle.eigen.cost import CostOperator, weight_matrix
from dasklle.eigen.resident import ResidentOperator

from ..conftest import manifold, max_sine

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


@pytest.fixture(scope="module")
def data():
    return np.hstack([manifold("digits", 600)] * 2)  # 128 features: the partitioned search


OPTIONS = dict(
    n_neighbors=10, n_components=2, eigen_solver="amg", tol=1e-6, random_state=0,
    neighbors_algorithm="projected",
)  # fmt: skip


def test_a_fit_solved_on_the_workers_keeps_its_rows_there(client, data, tmp_path):
    here = LocallyLinearEmbedding(**OPTIONS)
    with dask.config.set({**PARTITIONED, "dasklle.eigen.placement": "client"}):
        expected = here.fit_transform(data)
    there = LocallyLinearEmbedding(store=tmp_path / "fit.zarr", **OPTIONS)
    with dask.config.set({**PARTITIONED, "dasklle.eigen.placement": "workers"}):
        found = there.fit_transform(data)
    assert here.eigen_placement_ == "client" and there.eigen_placement_ == "workers"
    assert isinstance(there.neighbor_indices_, da.Array) and isinstance(there.weights_, da.Array)
    np.testing.assert_array_equal(np.asarray(there.neighbor_indices_), here.neighbor_indices_)
    np.testing.assert_allclose(np.asarray(there.weights_), here.weights_, rtol=1e-12)
    assert abs(there.get_weight_matrix() - here.get_weight_matrix()).max() == 0
    assert max_sine(found, expected) <= MAX_SINE
    # the stored stages are read back on the workers: the same rows and embedding
    again = LocallyLinearEmbedding(store=tmp_path / "fit.zarr", **OPTIONS)
    with dask.config.set({**PARTITIONED, "dasklle.eigen.placement": "workers"}):
        resumed = again.fit_transform(data)
    assert isinstance(again.neighbor_indices_, da.Array)
    np.testing.assert_array_equal(np.asarray(again.neighbor_indices_), here.neighbor_indices_)
    np.testing.assert_array_equal(resumed, found)
