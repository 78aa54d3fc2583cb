"""The "amg" iteration's bound against its measured error, along the iterations.

    python benchmarks/eigen_trajectory.py STORE.zarr [--every 20] [--n-components 2]

STORE is a store written by ``dasklle embed`` (its neighbor and weight stages are read back).
The same graph is solved by ``"factored"`` as the reference, then by ``"amg"`` at its defaults;
every ``--every`` iterations the script prints the bound the iteration reports and the sine of
the largest principal angle between its kept Ritz vectors and the reference's (computed from
the projection on the reference's complement, which has no cancellation).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import zarr

import dasklle.eigen.amg as amg_module
from dasklle import eigen
from dasklle.pipeline.stages import LocalFit, cost_operator


def largest_sine(V: np.ndarray, Q: np.ndarray) -> float:
    """Sine of the largest principal angle between span V and span Q (orthonormal)."""
    V = np.linalg.qr(np.asarray(V, np.float64))[0]
    return float(np.linalg.svd(V - Q @ (Q.T @ V), compute_uv=False).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--n-components", type=int, default=2)
    args = parser.parse_args()
    stages = zarr.open_group(args.store, mode="r")["stages"]
    indices = stages["neighbors/indices"][:]
    M = cost_operator(indices, LocalFit(weights=stages["weights/weights"][:]))
    d = args.n_components

    start = time.perf_counter()
    reference = eigen.null_space(M, d, solver="factored", random_state=0)
    print(f"factored: {time.perf_counter() - start:.1f} s, bound {reference.error_bound:.1e}")
    Q = np.linalg.qr(reference.vectors)[0]

    # record the block in the iteration's row order, with that order
    recorded, order = [], {}
    ordered, iterate = amg_module._order, amg_module.lobpcg

    def keep_order(*a, **k):
        order["rows"] = ordered(*a, **k)
        return order["rows"]

    def recording(A, X, precondition, constraint, *, on_iteration=None, **options):
        def hook(n_iter, bound, block, theta):
            if on_iteration is not None:
                on_iteration(n_iter, bound, block, theta)
            if n_iter % args.every == 0:
                recorded.append((n_iter, bound, block[:, :d].copy()))

        return iterate(A, X, precondition, constraint, on_iteration=hook, **options)

    amg_module._order, amg_module.lobpcg = keep_order, recording
    start = time.perf_counter()
    result = eigen.null_space(M, d, solver="amg", random_state=0, neighbors=indices)
    print(f"amg: {time.perf_counter() - start:.1f} s, {result.n_iter} iterations")
    Q_ordered = Q[order["rows"]]
    print("iteration  bound     measured sine")
    for n_iter, bound, block in recorded:
        print(f"{n_iter:9d}  {bound:8.2e}  {largest_sine(block, Q_ordered):.2e}")


if __name__ == "__main__":
    main()
