import dask.array as da
import numpy as np
import pytest
from sklearn.manifold._locally_linear import barycenter_weights as sklearn_barycenter_weights

from dasklle.local.weights import barycenter_weights, barycenter_weights_reference, neighbor_weights

from ..conftest import manifold, sklearn_neighbors

# Batched LAPACK solves vs one-at-a-time solves of the same well-conditioned systems.
WEIGHT_RTOL = 1e-9


@pytest.mark.parametrize("name", ["swiss_roll", "digits"])
@pytest.mark.parametrize("chunk_rows", [64, 1000])
def test_chunked_weights_match_reference_and_sklearn(name, chunk_rows):
    X = manifold(name, 400)
    indices = sklearn_neighbors(X, 8)
    found = neighbor_weights(da.from_array(X, chunks=(chunk_rows, -1)), indices, reg=1e-3).compute()
    np.testing.assert_allclose(found, barycenter_weights_reference(X, X, indices), rtol=WEIGHT_RTOL)
    np.testing.assert_allclose(found, sklearn_barycenter_weights(X, X, indices), rtol=1e-7)
    np.testing.assert_allclose(found.sum(1), 1.0)


def test_identical_neighbors_stay_finite():
    # Every neighbor coincides with the point: the Gram matrix is 0 and only reg keeps it solvable.
    points = np.zeros((3, 4))
    w = barycenter_weights(points, np.zeros((3, 5, 4)), reg=1e-3)
    np.testing.assert_allclose(w, 0.2)


def test_singular_without_regularisation_stays_finite():
    points = np.zeros((2, 3))
    w = barycenter_weights(points, np.ones((2, 4, 3)), reg=0.0)
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w.sum(1), 1.0)
