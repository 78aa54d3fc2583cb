import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from dasklle import datasets
from dasklle.neighbors import (
    PARTITION_COPIES,
    _partition_members,
    _smallest,
    choose_algorithm,
    drop_self,
    nearest_neighbors,
    rerank,
)

from .conftest import integer_data, lowest_index_neighbors, manifold

# pynndescent is approximate; at k=10 on digits-784 its recall is typically ~0.99 (measured).
MIN_NNDESCENT_RECALL = 0.95


def sklearn_neighbors(X: np.ndarray, k: int) -> np.ndarray:
    return NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)[:, 1:]


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(found, exact, strict=True))
    return hits / exact.size


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
    found_dist, found = _smallest(dist, index, 3)
    np.testing.assert_array_equal(found_dist, [[0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(found, [[9, 1, 3]])
    # many small integer distances, indices in no particular order
    rng = np.random.default_rng(0)
    dist = rng.integers(0, 4, size=(200, 40)).astype(np.float64)
    index = rng.permuted(np.tile(np.arange(40), (200, 1)), axis=1)
    order = np.lexsort((index, dist), axis=1)[:, :7]
    found_dist, found = _smallest(dist, index, 7)
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


def test_nndescent_recall_on_digits_784():
    X, _ = datasets.digits_784(3000, random_state=1)
    X = X.compute()
    indices, _ = nearest_neighbors(
        da.from_array(X, chunks=(1000, -1)), 10, algorithm="nndescent", random_state=0
    )
    measured = recall(indices.compute(), sklearn_neighbors(X, 10))
    assert measured >= MIN_NNDESCENT_RECALL, measured


# "projected" reranks 2k candidates found in a 64-axis PCA projection: measured recall 0.9999 on
# 20,000 digits-784 with exact candidate search; partitioned (2 of 8 partitions per point):
# 0.979 here, 0.988 at 20,000, 0.994 at 70,000. The target is 0.95.
MIN_PROJECTED_RECALL = {"exact": 0.99, "partitioned": 0.95}


@pytest.mark.parametrize("candidate_search", ["exact", "partitioned"])
def test_projected_recall_on_digits_784(candidate_search, monkeypatch):
    from dasklle import neighbors

    if candidate_search == "partitioned":  # what runs above 50,000 rows
        monkeypatch.setattr(neighbors, "PROJECTED_BRUTE_MAX_ROWS", 1000)
        monkeypatch.setattr(neighbors, "PARTITION_ROWS", 800)  # 8 partitions
    X, _ = datasets.digits_784(3000, random_state=1)
    X = X.compute()
    indices, index = nearest_neighbors(
        da.from_array(X, chunks=(700, -1)), 10, algorithm="projected", random_state=0
    )
    indices = indices.compute()
    exact = sklearn_neighbors(X, 10)
    assert recall(indices, exact) >= MIN_PROJECTED_RECALL[candidate_search]
    assert not (indices == np.arange(len(X))[:, None]).any()
    # sorted by true distance, like every algorithm's output
    d = np.linalg.norm(X[indices] - X[:, None, :], axis=2)
    assert np.all(np.diff(d, axis=1) >= -1e-4)
    # new points are searched like the training points: exactly, or in the fit's partitions
    new = datasets.digits_784(200, random_state=7)[0].compute()
    found = index.query(da.from_array(new, chunks=(100, -1)), 5).compute()
    expected = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(new)[1]
    if candidate_search == "exact":
        np.testing.assert_array_equal(found, expected)
    else:
        assert recall(found, expected) >= MIN_PROJECTED_RECALL[candidate_search]


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


def test_auto_choice():
    assert choose_algorithm("auto", 10**6, 3) == "kd_tree"
    assert choose_algorithm("auto", 5000, 784) == "brute"
    assert choose_algorithm("auto", 10**6, 784) == "projected"
    assert choose_algorithm("auto", 20_000, 784) == "projected"
    assert choose_algorithm("auto", 10**6, 50) == "projected"
    assert choose_algorithm("ball_tree", 10, 3) == "ball_tree"


def test_a_single_task_index_that_would_not_fit_runs_partitioned(client):
    """On 2 GiB workers a task may use 512 MiB: a KD-tree over 10^8 points or pynndescent over
    10^6 would not fit, so the partitioned search runs instead, with a warning."""
    assert choose_algorithm("auto", 10**8, 3) == "projected"
    with pytest.warns(UserWarning, match="running the partitioned search"):
        assert choose_algorithm("nndescent", 10**6, 50) == "projected"
    assert choose_algorithm("nndescent", 20_000, 50) == "nndescent"


def test_partitioned_graph_weights_and_recall(monkeypatch, tmp_path):
    """Above 50,000 rows, neighbors and weights are solved inside partitions (no gather); the
    shuffle through scratch files and the one through memory give the same result, and the
    scratch files are removed."""
    from dasklle import neighbors
    from dasklle.local.weights import neighbor_weights

    monkeypatch.setattr(neighbors, "PARTITION_ROWS", 1500)  # 6 partitions of ~1500 points
    X, _ = datasets.digits_784(3000, random_state=1)
    X = X.compute()
    dX = da.from_array(X, chunks=(700, -1))
    with dask.config.set({"temporary-directory": str(tmp_path)}):
        indices, weights, _ = neighbors.partitioned_graph(dX, 10, reg=1e-3, random_state=0)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(neighbors, "new_shuffle_directory", lambda: None)
    monkeypatch.setattr(neighbors, "PARTITION_GROUP_BYTES", 2**20)  # a shuffle pass per partition
    in_memory = neighbors.partitioned_graph(dX, 10, reg=1e-3, random_state=0)
    np.testing.assert_array_equal(in_memory[0], indices)
    np.testing.assert_array_equal(in_memory[1], weights)
    # measured 0.987 here (each point keeps the best of its 3 partitions' lists)
    assert recall(indices, sklearn_neighbors(X, 10)) >= 0.95
    assert not (indices == np.arange(len(X))[:, None]).any()
    # the same weights as the gather path computes from the same neighbor lists
    expected = neighbor_weights(dX, indices, reg=1e-3).compute()
    np.testing.assert_allclose(weights, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)


@pytest.mark.parametrize("n_parts", [2, 3, 40])
def test_partition_members_are_the_nearest_centres(n_parts):
    rng = np.random.default_rng(n_parts)
    z = (rng.standard_normal((500, 8)) * 4 + 2).astype(np.float32)
    centres = (rng.standard_normal((n_parts, 8)) * 3).astype(np.float32)
    members = _partition_members(z, centres)
    copies = min(PARTITION_COPIES, n_parts)
    distance = ((z[:, None, :].astype(np.float64) - centres[None]) ** 2).sum(axis=2)
    nearest = np.argsort(distance, axis=1)[:, :copies]
    for p in range(n_parts):
        np.testing.assert_array_equal(members[p], np.flatnonzero((nearest == p).any(axis=1)))


def test_fit_uses_partitioned_graph_above_threshold(monkeypatch):
    from dasklle import LocallyLinearEmbedding, neighbors

    monkeypatch.setattr(neighbors, "PROJECTED_BRUTE_MAX_ROWS", 1000)
    monkeypatch.setattr(neighbors, "PARTITION_ROWS", 1500)
    X, _ = datasets.digits_784(2000, random_state=2)
    X = X.compute()
    model = LocallyLinearEmbedding(
        n_neighbors=10, neighbors_algorithm="projected", random_state=0
    ).fit(X)
    assert model.neighbors_algorithm_ == "projected"
    assert recall(model.neighbor_indices_, sklearn_neighbors(X, 10)) >= 0.95
    W = model.get_weight_matrix()
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    assert np.all(np.isfinite(model.embedding_))
