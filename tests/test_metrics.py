import dask.array as da
import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from dasklle import LocallyLinearEmbedding
from dasklle.metrics import neighborhood_quality

from .conftest import manifold


@pytest.mark.parametrize("name", ["swiss_roll", "digits"])
def test_full_sample_matches_sklearn(name):
    X = manifold(name, 700)
    model = LocallyLinearEmbedding(n_neighbors=10, random_state=0).fit(X)
    q = neighborhood_quality(
        da.from_array(X, chunks=(150, -1)),
        model.embedding_,
        neighbor_indices=model.neighbor_indices_,
        n_neighbors=7,
        sample_size=700,
    )
    assert q["trustworthiness"] == pytest.approx(
        trustworthiness(X, model.embedding_, n_neighbors=7)
    )
    # Continuity is trustworthiness with the two spaces swapped.
    assert q["continuity"] == pytest.approx(trustworthiness(model.embedding_, X, n_neighbors=7))
    assert q["knn_recall"] == 1.0  # exact neighbors


def test_sample_estimates_and_recall_of_a_damaged_graph():
    X = manifold("swiss_roll", 2000)
    model = LocallyLinearEmbedding(n_neighbors=10, random_state=0).fit(X)
    full = trustworthiness(X, model.embedding_, n_neighbors=10)
    q = neighborhood_quality(X, model.embedding_, sample_size=400, random_state=1)
    assert abs(q["trustworthiness"] - full) < 0.01
    damaged = model.neighbor_indices_.copy()
    damaged[:, 5:] = np.random.default_rng(0).integers(0, 2000, (2000, 5))
    q = neighborhood_quality(X, model.embedding_, neighbor_indices=damaged, sample_size=400)
    assert 0.45 <= q["knn_recall"] <= 0.55
