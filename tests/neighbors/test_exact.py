"""Exact search (blockwise brute force, KD and ball trees): scikit-learn's neighbors, ties
ranked by the lower index whatever the chunking, the rerank, and the query of new points."""

import dask.array as da
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from dasklle.neighbors import nearest_neighbors
from dasklle.neighbors.exact import drop_self, rerank, smallest

from ..conftest import integer_data, lowest_index_neighbors, manifold, sklearn_neighbors


@pytest.mark.parametrize("name", ["swiss_roll", "digits"])
@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
@pytest.mark.parametrize("chunk_rows", [97, 800])
def test_exact_algorithms_match_sklearn(name, algorithm, chunk_rows):
    X = manifold(name, 800)
    indices, _ = nearest_neighbors(
        da.from_array(X, chunks=(chunk_rows, -1)), 7, algorithm=algorithm
    )
    np.testing.assert_array_equal(indices.compute(), sklearn_neighbors(X, 7))


# scikit-learn's own search keeps an order among equal distances that depends on its chunk size
# and thread count, so on tied data the reference ranks by (distance, index) directly.
@pytest.mark.parametrize("name", ["digits", "grid"])
@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
@pytest.mark.parametrize("chunk_rows", [None, 97, 500])
def test_exact_algorithms_break_ties_by_lower_index(name, algorithm, chunk_rows):
    X = integer_data(name)
    assert len(np.unique(X, axis=0)) == len(
        X
    )  # so the nearest point, column 0, is the point itself
    indices, _ = nearest_neighbors(
        da.from_array(X, chunks=(chunk_rows or -1, -1)), 10, algorithm=algorithm
    )
    np.testing.assert_array_equal(indices.compute(), lowest_index_neighbors(X, X, 11)[:, 1:])


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
def test_query_new_points_breaks_ties_by_lower_index(algorithm):
    X = integer_data("grid")
    Y = X[::7] + 0.5  # half-way between grid points: up to 8 at each distance
    _, index = nearest_neighbors(da.from_array(X, chunks=(100, -1)), 6, algorithm=algorithm)
    found = index.query(da.from_array(Y, chunks=(30, -1)), 6).compute()
    np.testing.assert_array_equal(found, lowest_index_neighbors(Y, X, 6))


def test_smallest_ranks_ties_at_the_boundary_by_index():
    dist = np.array([[1.0, 0.0, 1.0, 1.0, 2.0, 1.0]])
    index = np.array([[5, 9, 3, 7, 0, 1]])
    found_dist, found = smallest(dist, index, 3)
    np.testing.assert_array_equal(found_dist, [[0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(found, [[9, 1, 3]])
    # many small integer distances, indices in no particular order
    rng = np.random.default_rng(0)
    dist = rng.integers(0, 4, size=(200, 40)).astype(np.float64)
    index = rng.permuted(np.tile(np.arange(40), (200, 1)), axis=1)
    order = np.lexsort((index, dist), axis=1)[:, :7]
    found_dist, found = smallest(dist, index, 7)
    np.testing.assert_array_equal(found, np.take_along_axis(index, order, 1))
    np.testing.assert_array_equal(found_dist, np.take_along_axis(dist, order, 1))


def test_rerank_breaks_ties_by_lower_index():
    X = integer_data("digits")
    exact = lowest_index_neighbors(X, X, 31)[:, 1:]
    candidates = np.random.default_rng(0).permuted(exact, axis=1)
    found = rerank(da.from_array(X, chunks=(300, -1)), candidates, 10).compute()
    np.testing.assert_array_equal(found, exact[:, :10])


def test_brute_on_cluster(client):
    X = manifold("s_curve", 600)
    indices, _ = nearest_neighbors(da.from_array(X, chunks=(100, -1)), 5, algorithm="brute")
    np.testing.assert_array_equal(indices.compute(), sklearn_neighbors(X, 5))


def test_drop_self_by_index_not_position():
    # Rows 0 and 1 are duplicates: row 1's own index may come second among the candidates.
    candidates = np.array([[0, 1, 2], [0, 1, 2], [2, 3, 1]])
    np.testing.assert_array_equal(
        drop_self(candidates, np.array([0, 1, 2]), 2), [[1, 2], [0, 2], [3, 1]]
    )
    # A point absent from its own candidates (more than k duplicates): drop the farthest.
    np.testing.assert_array_equal(drop_self(np.array([[4, 5, 6]]), np.array([0]), 2), [[4, 5]])


def test_duplicated_points_never_list_themselves():
    X = np.repeat(np.random.default_rng(0).random((50, 3)), 3, axis=0)
    for algorithm in ("brute", "kd_tree"):
        indices, _ = nearest_neighbors(da.from_array(X, chunks=(40, -1)), 4, algorithm=algorithm)
        indices = indices.compute()
        assert not (indices == np.arange(len(X))[:, None]).any()


def test_query_new_points_matches_sklearn():
    X = manifold("swiss_roll", 500)
    Y = X[:50] + 0.01
    exact = NearestNeighbors(n_neighbors=6).fit(X).kneighbors(Y, return_distance=False)
    for algorithm in ("brute", "kd_tree"):
        _, index = nearest_neighbors(da.from_array(X, chunks=(100, -1)), 6, algorithm=algorithm)
        found = index.query(da.from_array(Y, chunks=(20, -1)), 6).compute()
        np.testing.assert_array_equal(found, exact)
