"""M for the hessian, modified and ltsa methods: local matrices per row block, summed."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..eigen import cost
from ..tasks import progress
from ..tasks.blocks import map_row_blocks, row_block_tasks, tree_reduce
from . import methods, weights


def _block_modified_ratio(points, gathered, local, *, row_offset, n_components):
    """Modified LLE's per-point ratio of small to large local eigenvalues, for choosing eta."""
    evals, _ = methods.modified_spectrum(points, gathered[local], points.shape[1])
    return methods.modified_ratio(evals, n_components)


def _block_alignment(
    points, gathered, local, block_indices, *, row_offset, n_samples, method, **params
):
    """One row block's local matrices, placed in an n x n sparse array."""
    neighbor_points = gathered[local]
    if method == "hessian":
        L = methods.hessian_local(neighbor_points, params["n_components"], params["hessian_tol"])
    elif method == "ltsa":
        L = methods.ltsa_local(neighbor_points, params["n_components"])
    else:
        L = methods.modified_local(
            points, neighbor_points, params["n_components"], params["eta"], params["modified_tol"]
        )
    own = np.arange(points.shape[0])[:, None] + row_offset
    return cost.alignment_matrix(np.hstack([own, block_indices]), L, n_samples)


def local_alignment(
    X, indices: np.ndarray, method: str, verbose: bool = False, **params
) -> sp.csr_array:
    """M for the hessian, modified and ltsa methods: per-block local matrices, summed."""
    plan = weights.gather_plan(indices, X.chunks[0])
    per_block = [(X[needed], local) for needed, local in plan]
    if method == "modified":
        rho = map_row_blocks(
            _block_modified_ratio,
            [X],
            per_block=per_block,
            out_cols=None,
            dtype=np.float64,
            n_components=params["n_components"],
        )
        (rho,) = progress.compute(rho, label="modified LLE eta", verbose=verbose)
        params["eta"] = float(np.median(rho))
    starts = np.cumsum((0,) + X.chunks[0])
    per_block = [
        (*extra, indices[a:b])
        for extra, a, b in zip(per_block, starts[:-1], starts[1:], strict=True)
    ]
    parts = row_block_tasks(
        _block_alignment, [X], per_block=per_block, n_samples=X.shape[0], method=method, **params
    )
    (M,) = progress.compute(
        tree_reduce(parts, cost.sum_matrices), label=f"{method} local fits", verbose=verbose
    )
    M.sum_duplicates()
    return M
