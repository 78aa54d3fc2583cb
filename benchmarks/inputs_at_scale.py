"""`dasklle embed` on the same data from every input format, on small workers.

    python benchmarks/inputs_at_scale.py [--data roll|digits] [--rows 100000] [--features 5120]
        [--workers 2] [--memory-limit 1GiB] [--eigen-placement auto|client|workers]
        [--formats npy,zarr,hdf5,h5ad,parquet] [--dir DIR]

Generates a swiss roll (or digits-784 rows) carried into ``--features`` dimensions by a random
linear map (float32; the defaults make a 2 GB file), writes it once in each format, and runs the
command line on each with ``--n-workers`` workers limited to ``--memory-limit``. For every run it
prints the exit code, the wall time, the peak resident memory of the command's own process (the
client, which also hosts the scheduler) and of its worker processes together, the workers
restarted (from the log), the neighbor search and its sampled recall, the eigen solve's
placement, iterations and bound, and the largest principal-angle sine between the run's
embedding and the first format's.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

BLOCK_ROWS = 10_000


def lifted_roll(start: int, stop: int, features: int) -> np.ndarray:
    """Rows start:stop of the data set (deterministic per row block)."""
    rng = np.random.default_rng(start)
    n = stop - start
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    roll = np.c_[t * np.cos(t), 21 * rng.uniform(size=n), t * np.sin(t)]
    lift = np.random.default_rng(0).standard_normal((3, features)) / np.sqrt(3)
    noise = 0.01 * rng.standard_normal((n, features))
    return (roll @ lift + noise).astype(np.float32)


def lifted_digits(rows: int):
    """A function of (start, stop, features) giving those rows of ``rows`` digits-784 rows (seed
    0) carried into ``features`` dimensions."""
    from dasklle import datasets

    X, _ = datasets.digits_784(rows, random_state=0, chunks=BLOCK_ROWS)
    lifts = {}  # one map a feature count, drawn once

    def block(start: int, stop: int, features: int) -> np.ndarray:
        if features not in lifts:
            lift = np.random.default_rng(0).standard_normal((784, features)) / np.sqrt(features)
            lifts[features] = lift.astype(np.float32)
        return np.asarray(X[start:stop]) @ lifts[features]

    return block


GENERATORS = {"roll": lambda rows: lifted_roll, "digits": lifted_digits}


def blocks(rows: int):
    for start in range(0, rows, BLOCK_ROWS):
        yield start, min(start + BLOCK_ROWS, rows)


def write_inputs(work: str, args, formats: list[str]) -> dict[str, str]:
    """The data in each format, written block by block; name -> the path given to dasklle."""
    import h5py
    import zarr

    rows, features, generate = args.rows, args.features, GENERATORS[args.data](args.rows)
    paths = {}
    npy = os.path.join(work, "x.npy")
    if not os.path.exists(npy):
        out = np.lib.format.open_memmap(npy + ".partial", "w+", np.float32, (rows, features))
        for a, b in blocks(rows):
            out[a:b] = generate(a, b, features)
        out.flush()
        del out
        os.replace(npy + ".partial", npy)
    data = np.load(npy, mmap_mode="r")
    paths["npy"] = npy
    if "zarr" in formats:
        paths["zarr"] = os.path.join(work, "x.zarr")
        if not os.path.exists(paths["zarr"]):
            z = zarr.create_array(
                paths["zarr"], shape=data.shape, dtype=np.float32, chunks=(1000, features)
            )
            for a, b in blocks(rows):
                z[a:b] = data[a:b]
    if "hdf5" in formats or "h5ad" in formats:
        h5 = os.path.join(work, "x.h5")
        if not os.path.exists(h5):
            with h5py.File(h5 + ".partial", "w") as f:
                d = f.create_dataset("data", data.shape, np.float32, chunks=(1000, features))
                for a, b in blocks(rows):
                    d[a:b] = data[a:b]
            os.replace(h5 + ".partial", h5)
        paths["hdf5"] = f"{h5}:/data"
    if "h5ad" in formats:
        h5ad = os.path.join(work, "cells.h5ad")
        if not os.path.exists(h5ad):
            import anndata
            import scipy.sparse as sp

            counts = sp.csr_matrix((rows, 10), dtype=np.float32)
            anndata.AnnData(X=counts, obsm={"X_pca": np.asarray(data)}).write_h5ad(h5ad)
        paths["h5ad"] = f"{h5ad}:X_pca"
    if "parquet" in formats:
        folder = os.path.join(work, "x.parquet")
        if not os.path.exists(folder):
            import pyarrow as pa
            import pyarrow.parquet as pq

            os.makedirs(folder + ".partial")
            names = [f"f{i}" for i in range(features)]
            for a, b in blocks(rows):
                table = pa.Table.from_arrays([pa.array(col) for col in data[a:b].T], names=names)
                target = os.path.join(folder + ".partial", f"part-{a:09d}.parquet")
                pq.write_table(table, target, row_group_size=1000)
            os.replace(folder + ".partial", folder)
        paths["parquet"] = folder
    return {name: paths[name] for name in formats}


def peaks(pid: int) -> tuple[int, int]:
    """Resident bytes of the process and of its children together."""
    import psutil

    try:
        proc = psutil.Process(pid)
        own = proc.memory_info().rss
        children = sum(c.memory_info().rss for c in proc.children(recursive=True))
    except psutil.Error:
        return 0, 0
    return own, children


def embed(source: str, out: str, args, log_path: str) -> dict:
    cmd = [
        sys.executable, "-m", "dasklle", "embed", source, "--out", out, "--overwrite",
        "--n-neighbors", "10", "--random-state", "0", "--n-workers", str(args.workers),
        "--memory-limit", args.memory_limit, "--eigen-placement", args.eigen_placement, "--quiet",
    ]  # fmt: skip
    start = time.perf_counter()
    client = workers = 0
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            own, children = peaks(proc.pid)
            client, workers = max(client, own), max(workers, children)
            time.sleep(0.25)
    text = open(log_path).read()
    result = {
        "exit": proc.returncode,
        "seconds": time.perf_counter() - start,
        "client_gb": client / 1e9,
        "workers_gb": workers / 1e9,
        "restarts": len(re.findall(r"Restarting worker|KilledWorker", text)),
    }
    if proc.returncode == 0:
        import zarr

        group = zarr.open_group(out, mode="r")
        result["embedding"] = np.asarray(group["embedding"][...], dtype=np.float64)
        result["algorithm"] = group.attrs.get("neighbors_algorithm")
        result["recall"] = (group.attrs.get("quality") or {}).get("knn_recall")
        result["eigen"] = (
            f"{group.attrs['eigen_placement']}, {group.attrs['eigen_iterations']} its, "
            f"bound {group.attrs['eigen_error_bound']:.1e}"
        )
    return result


def max_sine(A: np.ndarray, B: np.ndarray) -> float:
    import scipy.linalg

    A, B = A - A.mean(0), B - B.mean(0)
    return float(np.sin(scipy.linalg.subspace_angles(A, B).max()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(GENERATORS), default="roll")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=5120)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--eigen-placement", choices=("auto", "client", "workers"), default="auto")
    parser.add_argument("--formats", default="zarr,npy,hdf5,h5ad,parquet")
    parser.add_argument("--dir", help="folder for the data, stores and logs (default: temporary)")
    args = parser.parse_args()
    formats = args.formats.split(",")
    work = args.dir or tempfile.mkdtemp(prefix="dasklle-inputs-")
    os.makedirs(work, exist_ok=True)
    paths = write_inputs(work, args, formats)
    size = os.path.getsize(os.path.join(work, "x.npy")) / 1e9
    print(f"{args.rows:,} x {args.features} float32 ({size:.2f} GB as .npy) on "
          f"{args.workers} workers x {args.memory_limit}; data and logs in {work}")  # fmt: skip
    print(f"{'format':8s} {'exit':>4s} {'wall s':>7s} {'client GB':>9s} {'workers GB':>10s} "
          f"{'restarts':>8s}  {'search':10s} {'recall':>6s}  {'eigen':32s} "
          "sine vs first")  # fmt: skip
    first = None
    for name, source in paths.items():
        run = embed(source, os.path.join(work, f"{name}-out.zarr"), args,
                    os.path.join(work, f"{name}.log"))  # fmt: skip
        sine = ""
        if "embedding" in run:
            first = run["embedding"] if first is None else first
            sine = f"{max_sine(run['embedding'], first):.1e}"
        recall = run.get("recall")
        print(f"{name:8s} {run['exit']:>4d} {run['seconds']:7.1f} {run['client_gb']:9.2f} "
              f"{run['workers_gb']:10.2f} {run['restarts']:>8d}  {run.get('algorithm') or '-':10s} "
              f"{recall if recall is None else format(recall, '.4f')!s:>6s}  "
              f"{run.get('eigen', '-'):32s} {sine}",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
