"""Benchmarks users can run: dasklle and scikit-learn side by side, each in a fresh process.

    dasklle bench digits-20k --vs sklearn
    python -m dasklle.bench swiss-5k digits-70k

Every run happens in a new Python process (so imports and numba's compile time count), while
this process samples the resident memory of that process and all its children (dask workers)
every ``SAMPLE_INTERVAL`` seconds: "peak MB" is the largest sum seen. Data sets are generated
once into a zarr cache (``--data-dir``) and read from there by both sides; generation is not
timed.

Quality columns: ``recall`` (kNN recall against exact search, on a sample), ``trust``
(trustworthiness, k=10, on a sample), ``acc`` (10-NN label accuracy in the embedding, 5-fold, on
a sample of at most 20,000 points; for digits) and ``sine`` (largest principal angle between the
two embeddings, when both sides ran and n <= 100,000).

The command's flags and its loop over cases are in ``dasklle.cli.bench``; results measured with
it are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

# Name -> (generator, n_samples, n_neighbors, scheduler for dasklle)
CASES: dict[str, tuple[str, int, int, str]] = {
    "swiss-1k": ("swiss_roll", 1_000, 12, "threads"),  # a smoke test of the harness
    "swiss-5k": ("swiss_roll", 5_000, 12, "threads"),
    "swiss-100k": ("swiss_roll", 100_000, 12, "threads"),
    "swiss-1m": ("swiss_roll", 1_000_000, 12, "threads"),
    "digits-5k": ("digits_784", 5_000, 10, "threads"),
    "digits-20k": ("digits_784", 20_000, 10, "threads"),
    "digits-70k": ("digits_784", 70_000, 10, "threads"),
    "digits-100k": ("digits_784", 100_000, 10, "threads"),
    "digits-200k": ("digits_784", 200_000, 10, "threads"),
    "digits-1m": ("digits_784", 1_000_000, 10, "threads"),
}
# scikit-learn's shift-invert factorisation of M fills in on high-dimensional data and takes hours
# on digits of 70,000 points (docs/benchmarks.md), so --vs sklearn skips it above these sizes.
SKLEARN_MAX_ROWS = {"swiss_roll": 1_000_000, "digits_784": 20_000}
QUALITY_SAMPLE = 2_000
SAMPLE_INTERVAL = 0.1  # seconds between two samples of the process tree's memory
ACCURACY_SAMPLE = 20_000


@dataclass
class Run:
    side: str
    case: str
    n: int
    d_in: int
    seconds: float
    peak_mb: float
    stages: dict
    quality: dict
    error: str | None = None


def dataset_path(case: str, data_dir: str) -> str:
    """The case's data in a zarr group (X, labels), generated on first use."""
    from . import datasets

    name, n, _, _ = CASES[case]
    path = os.path.join(data_dir, f"{case}.zarr")
    if not os.path.exists(os.path.join(path, "zarr.json")) or not _complete(path):
        X, labels = datasets.make(name, n, random_state=0)
        datasets.write_zarr(path, X, labels)
        import zarr

        zarr.open_group(path, mode="a").attrs["complete"] = True
    return path


def _complete(path: str) -> bool:
    import zarr

    return bool(zarr.open_group(path, mode="r").attrs.get("complete", False))


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_side(
    side: str, case: str, data_dir: str, out_dir: str, cluster: tuple[int, str] | None = None
) -> Run:
    """Run one side in a fresh process; sample its memory; return what it reported."""
    result_path = os.path.join(out_dir, f"{side}-{case}.json")
    command = [
        sys.executable,
        "-m",
        "dasklle.bench",
        "_run",
        side,
        case,
        "--data-dir",
        data_dir,
        "--result",
        result_path,
    ]
    if cluster is not None and side == "dasklle":
        command += ["--workers", str(cluster[0]), "--memory-limit", cluster[1]]
    start = time.perf_counter()
    # the child's log goes to a file: a pipe nobody reads until the end fills up (64 KB of dask
    # worker logs) and blocks the child
    log_path = result_path + ".log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(SAMPLE_INTERVAL)
    wall = time.perf_counter() - start
    with open(log_path) as log:
        stderr = log.read()
    name, n, _, _ = CASES[case]
    if process.returncode != 0 or not os.path.exists(result_path):
        return Run(side, case, n, 0, wall, peak / 2**20, {}, {}, error=stderr.strip()[-500:])
    with open(result_path) as f:
        reported = json.load(f)
    return Run(
        side, case, n, reported["d_in"], wall, peak / 2**20, reported["stages"], {}, error=None
    )


def _run_in_this_process(
    side: str, case: str, data_dir: str, result_path: str, cluster: tuple[int, str] | None = None
) -> None:
    """The child: fit, time, and save the embedding; quality is measured by the parent later."""
    import zarr

    name, n, k, scheduler = CASES[case]
    path = dataset_path(case, data_dir)
    group = zarr.open_group(path, mode="r")
    d_in = group["X"].shape[1]
    start = time.perf_counter()
    if side == "sklearn":
        from sklearn.manifold import LocallyLinearEmbedding

        X = np.asarray(group["X"][...], dtype=np.float64 if name != "digits_784" else np.float32)
        loaded = time.perf_counter()
        Y = LocallyLinearEmbedding(
            n_neighbors=k, n_components=2, eigen_solver="arpack", random_state=0
        ).fit_transform(X)
        stages = {"load": loaded - start, "fit": time.perf_counter() - loaded}
    else:
        import dask

        from .estimator import LocallyLinearEmbedding

        client = None
        if cluster is not None:  # a local cluster whose workers have a memory limit
            from distributed import Client, LocalCluster

            local = LocalCluster(
                n_workers=cluster[0],
                threads_per_worker=1,
                memory_limit=cluster[1],
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(local)
            client.wait_for_workers(cluster[0])
            first_workers = _workers(client)
            scheduler = "dask.distributed"
        with dask.config.set(scheduler=scheduler):
            # the embedding goes to a zarr store, as in real use (the "write" column)
            model = LocallyLinearEmbedding(
                n_neighbors=k, n_components=2, random_state=0, store=result_path + ".zarr"
            )
            Y = model.fit_transform(path)
        stages = dict(model.timings_)
        stages["solver"] = model.eigen_solver_
        stages["knn"] = model.neighbors_algorithm_
        stages["residual"] = model.eigen_residual_
        stages["bound"] = model.eigen_error_bound_
        stages["iterations"] = model.n_iter_
        np.save(result_path + ".neighbors.npy", model.neighbor_indices_)
        if client is not None:
            stages["workers"] = f"{cluster[0]} x {cluster[1]}"
            # a worker the nanny killed (memory limit) comes back under a new address
            stages["workers replaced"] = len(_workers(client) - first_workers)
            client.close()
            local.close()
    stages["total"] = time.perf_counter() - start
    np.save(result_path + ".embedding.npy", Y)
    with open(result_path, "w") as f:
        json.dump({"d_in": d_in, "stages": stages}, f)


def _workers(client) -> set[str]:
    return set(client.scheduler_info()["workers"])


def measure_quality(run: Run, data_dir: str, out_dir: str, sample: int) -> None:
    """Quality of a finished run (not timed): recall, trustworthiness and label accuracy."""
    import zarr
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from .metrics import neighborhood_quality

    base = os.path.join(out_dir, f"{run.side}-{run.case}.json")
    if run.error or not os.path.exists(base + ".embedding.npy"):
        return
    Y = np.load(base + ".embedding.npy")
    group = zarr.open_group(dataset_path(run.case, data_dir), mode="r")
    import dask.array as da

    X = da.from_zarr(group["X"])
    nbrs = base + ".neighbors.npy"
    q = neighborhood_quality(
        X,
        Y,
        neighbor_indices=np.load(nbrs) if os.path.exists(nbrs) else None,
        n_neighbors=10,
        sample_size=sample,
        random_state=0,
    )
    run.quality = {"trust": q["trustworthiness"]}
    if "knn_recall" in q:
        run.quality["recall"] = q["knn_recall"]
    if CASES[run.case][0] == "digits_784":
        labels = np.asarray(group["labels"][...])
        rows = np.random.default_rng(0).choice(len(Y), min(len(Y), ACCURACY_SAMPLE), replace=False)
        run.quality["acc"] = float(
            cross_val_score(KNeighborsClassifier(10), Y[rows], labels[rows], cv=5).mean()
        )


def sine(out_dir: str, case: str) -> float | None:
    import scipy.linalg

    paths = [
        os.path.join(out_dir, f"{s}-{case}.json.embedding.npy") for s in ("dasklle", "sklearn")
    ]
    if not all(os.path.exists(p) for p in paths) or CASES[case][1] > 100_000:
        return None
    A, B = (np.load(p).astype(np.float64) for p in paths)
    A, B = A - A.mean(0), B - B.mean(0)
    return float(np.sin(scipy.linalg.subspace_angles(A, B).max()))


def _solver(r: Run) -> str:
    if r.side == "sklearn":
        return "arpack"
    text = f"{r.stages.get('knn', '')}+{r.stages.get('solver', '')}"
    if r.stages.get("residual") is not None:
        its = r.stages.get("iterations")
        unit = "solves" if r.stages.get("solver") == "factored" else "it"
        bound = r.stages.get("bound")
        text += f" (residual {r.stages['residual']:.0e}"
        text += f", sine bound {bound:.0e}" if bound is not None else ""
        text += f", {its} {unit})" if its else ")"
    if "workers" in r.stages:
        text += f" on {r.stages['workers']} workers, {r.stages['workers replaced']} replaced"
    return text


def format_table(runs: list[Run], sines: dict[str, float | None]) -> str:
    header = (
        f"{'case':<12} {'side':<8} {'n':>9} {'D':>4} {'knn':>7} {'weights':>7} "
        f"{'assem':>6} {'eigen':>7} {'write':>6} {'total s':>8} {'peak MB':>8} {'recall':>6} "
        f"{'trust':>6} {'acc':>6}  solver"
    )
    lines = [header, "-" * len(header)]
    by_case: dict[str, dict[str, Run]] = {}
    for r in runs:
        by_case.setdefault(r.case, {})[r.side] = r

    def cell(value, fmt):
        if isinstance(value, int | float):
            return format(value, fmt)
        return format("-", ">" + fmt.split(".")[0])

    for case, sides in by_case.items():
        for side, r in sides.items():
            if r.error:
                lines.append(f"{case:<12} {side:<8} {r.n:>9,} failed: {r.error.splitlines()[-1]}")
                continue
            s, q = r.stages, r.quality
            lines.append(
                f"{case:<12} {side:<8} {r.n:>9,} {r.d_in:>4} {cell(s.get('neighbors'), '7.1f')} "
                f"{cell(s.get('weights'), '7.1f')} {cell(s.get('assemble'), '6.1f')} "
                f"{cell(s.get('eigen'), '7.1f')} "
                f"{cell(s.get('write'), '6.1f')} {r.seconds:>8.1f} {r.peak_mb:>8.0f} "
                f"{cell(q.get('recall'), '6.3f')} {cell(q.get('trust'), '6.3f')} "
                f"{cell(q.get('acc'), '6.3f')}  {_solver(r)}"
            )
        if (
            "dasklle" in sides
            and "sklearn" in sides
            and not (sides["dasklle"].error or sides["sklearn"].error)
        ):
            d, k = sides["dasklle"], sides["sklearn"]
            extra = (
                f", sine(dasklle, sklearn) {sines[case]:.1e}" if sines.get(case) is not None else ""
            )
            lines.append(
                f"{'':<12} ratio    sklearn/dasklle time {k.seconds / d.seconds:.1f}x, "
                f"dasklle/sklearn peak memory {d.peak_mb / k.peak_mb:.2f}{extra}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m dasklle.bench``: the same as ``dasklle bench``; ``_run`` is one side's child."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_run":
        parser = argparse.ArgumentParser(prog="dasklle.bench _run")
        parser.add_argument("side", choices=("dasklle", "sklearn"))
        parser.add_argument("case", choices=sorted(CASES))
        parser.add_argument("--data-dir", required=True)
        parser.add_argument("--result", required=True)
        parser.add_argument("--workers", type=int, default=None)
        parser.add_argument("--memory-limit", default=None)
        a = parser.parse_args(argv[1:])
        cluster = (a.workers, a.memory_limit) if a.workers else None
        _run_in_this_process(a.side, a.case, a.data_dir, a.result, cluster)
        return 0
    from .cli import bench as command
    from .cli.common import HelpFormatter

    parser = argparse.ArgumentParser(
        prog="dasklle bench", description=command.HELP, formatter_class=HelpFormatter
    )
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
