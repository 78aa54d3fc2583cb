"""The projected search, with its candidates found exactly or inside partitions: recall,
order by true distance, and the query of new points."""

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from dasklle import datasets
from dasklle.neighbors import nearest_neighbors

from ..conftest import recall, sklearn_neighbors

# the recall each candidate search must reach on 3,000 digits-784 (k = 10); the recall they
# reach is in docs/design/neighbors.md
MIN_PROJECTED_RECALL = {"exact": 0.99, "partitioned": 0.95}
# what runs above neighbors.projected-brute-max-rows, here in 8 partitions
PARTITIONED = {
    "dasklle.neighbors.projected-brute-max-rows": 1000,
    "dasklle.neighbors.partition-rows": 800,
}


@pytest.mark.parametrize("candidate_search", ["exact", "partitioned"])
def test_projected_recall_on_digits_784(candidate_search):
    X, _ = datasets.digits_784(3000, random_state=1)
    X = X.compute()
    new = datasets.digits_784(200, random_state=7)[0].compute()
    with dask.config.set(PARTITIONED if candidate_search == "partitioned" else {}):
        indices, index = nearest_neighbors(
            da.from_array(X, chunks=(700, -1)), 10, algorithm="projected", random_state=0
        )
        indices = indices.compute()
        # new points are searched like the training points: exactly, or in the fit's partitions
        found = index.query(da.from_array(new, chunks=(100, -1)), 5).compute()
    exact = sklearn_neighbors(X, 10)
    assert recall(indices, exact) >= MIN_PROJECTED_RECALL[candidate_search]
    assert not (indices == np.arange(len(X))[:, None]).any()
    # sorted by true distance, like every algorithm's output
    d = np.linalg.norm(X[indices] - X[:, None, :], axis=2)
    assert np.all(np.diff(d, axis=1) >= -1e-4)
    expected = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(new)[1]
    if candidate_search == "exact":
        np.testing.assert_array_equal(found, expected)
    else:
        assert recall(found, expected) >= MIN_PROJECTED_RECALL[candidate_search]
