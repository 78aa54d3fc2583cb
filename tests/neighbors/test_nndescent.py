"""pynndescent's approximate search: its recall on high-dimensional data."""

import dask.array as da

from dasklle import datasets
from dasklle.neighbors import nearest_neighbors

from ..conftest import recall, sklearn_neighbors

# pynndescent is approximate; the margin below its usual recall is in docs/design/neighbors.md
MIN_NNDESCENT_RECALL = 0.95


def test_nndescent_recall_on_digits_784():
    X, _ = datasets.digits_784(3000, random_state=1)
    X = X.compute()
    indices, _ = nearest_neighbors(
        da.from_array(X, chunks=(1000, -1)), 10, algorithm="nndescent", random_state=0
    )
    measured = recall(indices.compute(), sklearn_neighbors(X, 10))
    assert measured >= MIN_NNDESCENT_RECALL, measured
