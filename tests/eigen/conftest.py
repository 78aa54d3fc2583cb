"""Cost matrices and operators of the test manifolds and of random neighbor graphs."""

from __future__ import annotations

import numpy as np

from dasklle.eigen.cost import CostOperator, cost_matrix, weight_matrix
from dasklle.local.weights import barycenter_weights_reference

from ..conftest import manifold, sklearn_neighbors

# Iterative solvers vs LAPACK on the same M: the bound the sparse path is held to.
ITERATIVE_MAX_SINE = 1e-4


def lle_weight_matrix(X: np.ndarray, k: int = 10):
    """(W, neighbor indices) of standard LLE on X, from an exact kNN search."""
    indices = sklearn_neighbors(X, k)
    return weight_matrix(indices, barycenter_weights_reference(X, X, indices)), indices


def lle_cost_matrix(name: str, n: int = 800, k: int = 10):
    """M of standard LLE on a test manifold."""
    return cost_matrix(lle_weight_matrix(manifold(name, n), k)[0])


def cost_operator(X: np.ndarray, k: int = 10) -> CostOperator:
    """M of standard LLE on X, as the operator through I - W that the pipeline passes."""
    return CostOperator.from_weights(lle_weight_matrix(X, k)[0])


def random_weight_matrix(n: int, k: int, rng):
    """W of a random k-neighbor graph on n points, each row summing to one."""
    indices = np.array([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    weights = rng.random(indices.shape)
    return weight_matrix(indices, weights / weights.sum(1, keepdims=True))
