"""Time the eigen stage alone on a benchmark case's weights (the figures of docs/design/eigen.md).

    python benchmarks/eigen_stage.py CASE [--what solve|products|vcycle] [--solver auto]
        [--without-neighbors] [--repeat 5] [--tol auto] [--max-iter auto] [--workers N]
        [--data-dir DIR]

CASE is one of ``dasklle bench``'s cases (swiss-5k ... digits-1m). The first run generates the
case's data as ``dasklle bench`` does, fits LLE once and keeps W and the neighbor lists in
``DIR/CASE-weights.npz``; every run then measures, in this process:

- ``solve``: ``null_space`` on the CostOperator of W, as the pipeline calls it: seconds, the
  solver that ran, its iterations, residual and bound, and the process's peak resident memory
  (on the run that fits, the fit's too); ``--without-neighbors`` leaves ``"amg"`` to aggregate
  over M's pattern instead of the kNN graph; ``--workers N`` runs the ``"amg"`` iteration on a
  local cluster of N single-threaded worker processes;
- ``products``: M times blocks of 12 and 20 vectors in float64 and float32, with M formed and
  through I - W (rows in reverse Cuthill-McKee order, BLAS on one thread), median of --repeat;
- ``vcycle``: one V-cycle of the ``"amg"`` preconditioner on 10 vectors, median of --repeat.

Alternatives are chosen through dasklle's configuration in the environment, for example
``DASK_DASKLLE__EIGEN__SMOOTH_PROLONGATOR=True`` or ``DASK_DASKLLE__EIGEN__ROW_KERNEL_MIN_ROWS=0``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp


def weights(case: str, data_dir: str) -> tuple[sp.csr_array, np.ndarray]:
    """W and the neighbor lists of the case, fitted once and kept next to its data."""
    path = os.path.join(data_dir, f"{case}-weights.npz")
    if not os.path.exists(path):
        from dasklle import LocallyLinearEmbedding
        from dasklle.bench import CASES, dataset_path

        k = CASES[case][2]
        # only W and the neighbor lists are kept: the eigen stage of this fit is cut short
        model = LocallyLinearEmbedding(n_neighbors=k, n_components=2, random_state=0, max_iter=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(dataset_path(case, data_dir))
        np.savez(path, indices=model.neighbor_indices_, weights=model.weights_)
    stored = np.load(path)
    from dasklle.eigen.cost import weight_matrix

    return weight_matrix(stored["indices"], stored["weights"]), stored["indices"]


def _auto_or(kind):
    """An argparse type: "auto" or a number of ``kind``."""
    return lambda text: text if text == "auto" else kind(text)


def median_seconds(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def ordered(W: sp.csr_array, indices: np.ndarray):
    """The operator of M and the kNN graph in reverse Cuthill-McKee order, as "amg" runs them."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    from dasklle.eigen.cost import CostOperator
    from dasklle.eigen.multigrid import knn_graph

    graph = knn_graph(indices, W.shape[0])
    order = reverse_cuthill_mckee(sp.csr_matrix(graph), symmetric_mode=True)
    return CostOperator.from_weights(W).permuted(order), graph[order][:, order]


def solve(W, indices, args) -> None:
    from dasklle.eigen import null_space
    from dasklle.eigen.cost import CostOperator

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = null_space(
            CostOperator.from_weights(W),
            2,
            solver=args.solver,
            tol=args.tol,
            max_iter=args.max_iter,
            random_state=0,
            n_features=args.n_features,
            neighbors=None if args.without_neighbors else indices,
        )
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.case} solve: {seconds:.2f} s, {result.solver} in the {result.placement}, "
        f"n_iter {result.n_iter}, "
        f"residual {result.residual:.1e}, bound on the sine {result.error_bound:.1e}, "
        f"peak RSS {peak_mb:.0f} MB"
    )


def on_workers(W, indices, args) -> None:
    """``solve`` with the amg iteration on a LocalCluster of ``--workers`` 1-thread processes."""
    import dask
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as c,
        Client(c),
        dask.config.set({"dasklle.eigen.placement": "workers"}),
    ):
        solve(W, indices, args)


def products(operator, graph, args) -> None:
    rng = np.random.default_rng(0)
    n = operator.shape[0]
    for dtype in (np.float64, np.float32):
        through = operator.astype(dtype)
        formed = sp.csr_array(through.tocsr(), dtype=dtype)
        for columns in (12, 20):
            X = rng.standard_normal((n, columns)).astype(dtype)
            m = median_seconds(lambda: formed @ X, args.repeat)  # noqa: B023
            b = median_seconds(lambda: through @ X, args.repeat)  # noqa: B023
            print(
                f"{args.case} M @ X ({columns} {np.dtype(dtype).name}): M formed "
                f"{1e3 * m:.1f} ms ({formed.nnz / n:.0f} nonzeros a row), "
                f"through I - W {1e3 * b:.1f} ms"
            )


def vcycle(operator, graph, args) -> None:
    from dasklle import config
    from dasklle.eigen.multigrid import build_preconditioner

    rng = np.random.default_rng(0)
    shift = float(config.get("eigen.shift-fraction")) * float(operator.diagonal().mean())
    shifted = operator.with_shift(shift)
    start = time.perf_counter()
    cycle = build_preconditioner(shifted, graph, rng)
    built = time.perf_counter() - start
    block = rng.standard_normal((operator.shape[0], 10))
    seconds = median_seconds(lambda: cycle(block), args.repeat)
    print(
        f"{args.case} V-cycle on 10 vectors: {seconds:.3f} s (levels {cycle.sizes}, "
        f"built in {built:.1f} s)"
    )


def main() -> None:
    from dasklle.bench import CASES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--what", choices=["solve", "products", "vcycle"], default="solve")
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--without-neighbors", action="store_true")
    parser.add_argument("--tol", type=_auto_or(float), default="auto")
    parser.add_argument("--max-iter", type=_auto_or(int), default="auto")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "dasklle-bench"))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    args.n_features = 784 if CASES[args.case][0] == "digits_784" else 3
    W, indices = weights(args.case, args.data_dir)
    if args.what == "solve" and args.workers:
        on_workers(W, indices, args)
        return
    if args.what == "solve":
        solve(W, indices, args)
        return
    from threadpoolctl import threadpool_limits

    operator, graph = ordered(W, indices)
    with threadpool_limits(limits=1, user_api="blas"):  # as the "amg" solve runs
        {"products": products, "vcycle": vcycle}[args.what](operator, graph, args)


if __name__ == "__main__":
    main()
