"""The ``"amg"`` iteration on 1, 2, 4 ... worker processes against the client, with the cost
model's terms beside the measurements (the scaling table of docs/design/eigen.md).

    python benchmarks/eigen_scaling.py CASE [--workers 0 1 2 4] [--iterations 10]
        [--inverse] [--memory-limit auto] [--data-dir DIR]

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

With ``--inverse`` the iteration is preconditioned by the solves with B and B^T (the default
from ``eigen.inverse-workers-min-rows`` rows) and its block has ``eigen.inverse-extra-vectors``
extra vectors; the figures are then also given per GMRES step (one preconditioned product for
all the columns solved together), against the model's terms for a step: 8 tasks a range plus
5 a halo plus 1 for the Gram-Schmidt reduction (the cycle's 4 products with B and the product
after it read halos), and, for each column solved together, 5 products' halos and the restriction to
the coarse level (sent to the client) in 8-byte entries.
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
STEP_TASKS_PER_RANGE, STEP_TASKS_PER_HALO, STEP_REDUCTIONS = 8, 5, 1  # a GMRES step's
STEP_PRODUCTS = 5  # the cycle's two sweeps after the coarse level, one before, the
# restriction's residual, and the product with B or B^T after the cycle


class StepCounter:
    """Counts the GMRES steps of the solves with B and B^T (each preconditioned product of a
    solve's columns together is one) and the columns of each."""

    def __init__(self, module):
        self.module, self.original = module, module._arnoldi
        self.steps = self.column_steps = 0

    def __enter__(self):
        def counted_arnoldi(A, precondition, r, beta, targets, restart, passes):
            def counted(X):
                self.steps += 1
                self.column_steps += X.columns if hasattr(X, "columns") else X.shape[1]
                return precondition(X)

            return self.original(A, counted, r, beta, targets, restart, passes)

        self.module._arnoldi = counted_arnoldi
        return self

    def __exit__(self, *exc):
        self.module._arnoldi = self.original


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


def measure(
    W, indices, n_workers: int, iterations: int, memory_limit: str, inverse: bool = False
) -> dict:
    """One capped solve; the per-iteration figures after its first iteration."""
    from distributed import Client, LocalCluster, get_task_stream

    from dasklle import config
    from dasklle.eigen import amg, inverse_workers, workers
    from dasklle.eigen import inverse as in_client
    from dasklle.eigen.cost import CostOperator

    operator = CostOperator.from_weights(W)
    built = []
    original = workers.WorkerProblem.__init__

    def keep(self, *args, **kwargs):  # the problem's halos and ranges, for the model's terms
        original(self, *args, **kwargs)
        built.append(self)

    stamps, sent, steps = [], [], []
    counter = StepCounter(inverse_workers if n_workers else in_client)
    block = 2 + config.get("eigen.inverse-extra-vectors") if inverse else 10
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
        counter,
    ):
        warnings.simplefilter("ignore")

        def on_iteration(n_iter, bound, X, theta):
            stamps.append((time.time(), time.perf_counter()))
            steps.append((counter.steps, counter.column_steps))
            if n_workers and n_iter in (1, iterations):
                sent.append(_sent_by_workers(client))

        workers.WorkerProblem.__init__ = keep
        start = time.perf_counter()
        try:
            amg.bottom_eigenvectors(
                operator, 2, neighbors=indices, block=block, tol=0.0, max_iter=iterations,
                rng=np.random.default_rng(0), on_iteration=on_iteration,
                client=client if n_workers else None, inverse=inverse,
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
    step_count = (steps[-1][0] - steps[1][0]) / per
    columns = (steps[-1][1] - steps[1][1]) / max(steps[-1][0] - steps[1][0], 1)
    if inverse:
        row |= {"to iteration 1 s": stamps[0][1] - start, "GMRES steps": step_count}
        row["s a step"] = row["seconds"] / max(step_count, 1)
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
        if inverse:  # the cycle's model does not apply
            del row["model tasks"], row["model MB"]
            row |= _step_terms(row, problem, ranges, pairs, step_count, columns)
    return row


def _step_terms(row: dict, problem, ranges: int, pairs: int, steps: float, columns: float):
    """A GMRES step's tasks and bytes against the model's (the iteration's own tasks, outside
    the solves, are counted in the measured figures)."""
    steps = max(steps, 1)
    return {
        "tasks a step": row["tasks"] / steps,
        "model tasks a step": STEP_TASKS_PER_RANGE * ranges
        + STEP_TASKS_PER_HALO * pairs
        + STEP_REDUCTIONS,
        "MB a step": row["MB sent"] / steps,
        "model MB a step": (STEP_PRODUCTS * problem.M.sent_rows + sum(problem.coarse_sizes))
        * 8
        * columns
        / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--inverse", action="store_true", help="precondition by the inverse")
    parser.add_argument("--memory-limit", default="auto", help="each worker's, as LocalCluster's")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "dasklle-bench"))
    args = parser.parse_args()
    W, indices = (
        _stored(args.case) if args.case.endswith(".zarr") else weights(args.case, args.data_dir)
    )
    print(f"{args.case}: {W.shape[0]:,} rows, {args.iterations} iterations, tol 0")
    for n_workers in args.workers:
        row = measure(W, indices, n_workers, args.iterations, args.memory_limit, args.inverse)
        row["client peak MB"] = _peak_resident_bytes() / 1e6  # this process so far
        where = f"{n_workers} workers" if n_workers else "client"
        print(where + ": " + ", ".join(f"{key} {value:.3g}" for key, value in row.items()))


if __name__ == "__main__":
    main()
