"""Stage 4: the bottom eigenvectors of M = (I - W)^T (I - W), skipping the constant one.

=================  ==============================================================================
module             holds
=================  ==============================================================================
``solve``          ``null_space`` and its result ``NullSpace``; ``choose_solver`` (what
                   ``"auto"`` runs); the dense, ARPACK and scipy-LOBPCG calls; the fallbacks,
                   residual check and warnings
``cost``           W, M and the operators on M: ``weight_matrix``, ``cost_matrix``,
                   ``CostOperator`` (M applied through I - W), ``chebyshev_step``,
                   ``alignment_matrix`` and ``sum_matrices`` (M of the other LLE methods)
``factored``       the ``"factored"`` solver: ARPACK shift-invert through one sparse LU of I - W
``amg``            the ``"amg"`` solver: row ordering, shifted hierarchy, block LOBPCG
``lobpcg``         dasklle's block LOBPCG iteration
``multigrid``      the ``"amg"`` preconditioner: kNN-graph aggregation and the block V- or K-cycle
``workers``        the ``"amg"`` iteration on the Dask workers: ranges, preconditioner, LOBPCG
``rowblocks``      n-row blocks held on the workers and the products and reductions on them
``kernels``        numba row-parallel CSR kernels for large products (imported only when used)
=================  ==============================================================================

The tunables are dask configuration under ``dasklle.eigen`` (docs/configuration.md); why each
solver and default was chosen, with the measurements: docs/design/eigen.md.
"""

from __future__ import annotations

from .placement import places_on_workers
from .solve import NullSpace, choose_solver, null_space

__all__ = ["NullSpace", "choose_solver", "null_space", "places_on_workers"]
