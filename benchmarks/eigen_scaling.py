"""The ``"amg"`` iteration on 1, 2, 4 ... worker processes against the client, with the cost
model's terms beside the measurements (the scaling table of docs/design/eigen.md).

    python benchmarks/eigen_scaling.py CASE [--workers 0 1 2 4] [--iterations 10]
        [--memory-limit auto] [--data-dir DIR]

CASE is one of ``dasklle bench``'s cases, whose W and neighbor lists come from
``eigen_stage.py``'s ``DIR/CASE-weights.npz`` (fitted on the first run), or a store that
``dasklle embed`` wrote (``STORE.zarr``: its neighbor and weight stages are read). For each
worker count (0: the client) the solve runs ``--iterations`` iterations with ``tol=0`` on a
LocalCluster of single-threaded worker processes and prints, per iteration after the first:

- seconds;
- tasks (from the scheduler's task stream) against the model's 31 a range and product round
  plus 9 a halo (one halo per source range and other worker, for each of the 9 products);
- megabytes sent by the workers (to other workers and to the client) against the model's rows
  sent between workers per product times 480 bytes (8 float32 products of 10 columns and one
  float64 product of 20);
- the busiest worker's seconds of computing, the workers' largest peak resident memory (the
  whole run's) and this process's peak so far (the client's, with the case's W loaded).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
from eigen_stage import weights

TASKS_PER_RANGE = 31  # map calls of one iteration, reductions included
PRODUCTS = 9  # 2 x 3 Chebyshev steps + 2 residuals in the preconditioner, and A S
BYTES_PER_SENT_ROW = 8 * 10 * 4 + 20 * 8


def _stored(path: str):
    """W and the neighbor lists kept in a dasklle store."""
    import zarr

    from dasklle.eigen.cost import weight_matrix

    stages = zarr.open_group(path, mode="r")["stages"]
    indices = np.asarray(stages["neighbors"]["indices"][:])
    return weight_matrix(indices, np.asarray(stages["weights"]["weights"][:])), indices


def _sent_by_workers(client) -> int:
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def _peak_resident_bytes() -> int:
    """This process's peak resident memory (VmHWM: ru_maxrss would count the parent's memory
    in a worker started by fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(W, indices, n_workers: int, iterations: int, memory_limit: str) -> dict:
    """One capped solve; the per-iteration figures after its first iteration."""
    from distributed import Client, LocalCluster, get_task_stream

    from dasklle.eigen import amg, workers
    from dasklle.eigen.cost import CostOperator

    operator = CostOperator.from_weights(W)
    built = []
    original = workers.WorkerProblem.__init__

    def keep(self, *args, **kwargs):  # the problem's halos and ranges, for the model's terms
        original(self, *args, **kwargs)
        built.append(self)

    stamps, sent = [], []
    with (
        LocalCluster(
            n_workers=max(n_workers, 1),
            threads_per_worker=1,
            memory_limit=memory_limit,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
        get_task_stream(client) as stream,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")

        def on_iteration(n_iter, bound, X, theta):
            stamps.append((time.time(), time.perf_counter()))
            if n_workers and n_iter in (1, iterations):
                sent.append(_sent_by_workers(client))

        workers.WorkerProblem.__init__ = keep
        try:
            amg.bottom_eigenvectors(
                operator, 2, neighbors=indices, block=10, tol=0.0, max_iter=iterations,
                rng=np.random.default_rng(0), on_iteration=on_iteration,
                client=client if n_workers else None,
            )  # fmt: skip
        finally:
            workers.WorkerProblem.__init__ = original
        peak = max(client.run(_peak_resident_bytes).values())
    after = stamps[1][0]
    tasks = [t for t in stream.data if t["startstops"] and t["startstops"][0]["start"] >= after]
    busy: dict[str, float] = {}
    for task in tasks:
        for span in task["startstops"]:
            if span["action"] == "compute":
                busy[task["worker"]] = busy.get(task["worker"], 0.0) + span["stop"] - span["start"]
    per = iterations - 1
    row = {"seconds": (stamps[-1][1] - stamps[1][1]) / per}
    if n_workers:
        problem = built[-1]
        ranges, pairs = len(problem.bounds) - 1, len(problem.M.halos)
        row |= {
            "tasks": len(tasks) / per,
            "model tasks": TASKS_PER_RANGE * ranges + PRODUCTS * pairs,
            "MB sent": (sent[1] - sent[0]) / per / 1e6,
            "model MB": problem.M.sent_rows * BYTES_PER_SENT_ROW / 1e6,
            "busiest worker s": max(busy.values()) / per,
            "worker peak MB": peak / 1e6,
            "ranges": ranges,
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--memory-limit", default="auto", help="each worker's, as LocalCluster's")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "dasklle-bench"))
    args = parser.parse_args()
    W, indices = (
        _stored(args.case) if args.case.endswith(".zarr") else weights(args.case, args.data_dir)
    )
    print(f"{args.case}: {W.shape[0]:,} rows, {args.iterations} iterations, tol 0")
    for n_workers in args.workers:
        row = measure(W, indices, n_workers, args.iterations, args.memory_limit)
        row["client peak MB"] = _peak_resident_bytes() / 1e6  # this process so far
        where = f"{n_workers} workers" if n_workers else "client"
        print(where + ": " + ", ".join(f"{key} {value:.3g}" for key, value in row.items()))


if __name__ == "__main__":
    main()
