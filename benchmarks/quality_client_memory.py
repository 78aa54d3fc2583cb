"""Peak memory of the client while dasklle measures an embedding's quality on a 2-worker cluster.

    python benchmarks/quality_client_memory.py

Writes a 30,000 x 5,120 float32 zarr array once (under $TMPDIR), then runs
``neighborhood_quality`` with a sample of 2,000 points and prints the client's resident memory
before and at its peak (sampled every 20 ms).
"""

import os
import tempfile
import threading

import numpy as np
import psutil

ROWS, FEATURES, CHUNK = 30_000, 5_120, 1_000


def _data(path: str):
    import dask.array as da
    import zarr

    if not os.path.exists(path):
        rng = np.random.default_rng(0)
        z = zarr.open_array(path, mode="w", shape=(ROWS, FEATURES), chunks=(CHUNK, FEATURES))
        for start in range(0, ROWS, CHUNK):
            z[start : start + CHUNK] = rng.normal(size=(CHUNK, FEATURES)).astype("f4")
    return da.from_zarr(path)


def _peak_while(run, every: float = 0.02):
    """(run's result, resident bytes before, peak resident bytes while it ran)."""
    process = psutil.Process()
    before = peak = process.memory_info().rss
    done = threading.Event()

    def watch():
        nonlocal peak
        while not done.wait(every):
            peak = max(peak, process.memory_info().rss)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        return run(), before, peak
    finally:
        done.set()
        watcher.join()


def main() -> None:
    from distributed import Client, LocalCluster

    from dasklle.metrics import neighborhood_quality

    X = _data(os.path.join(tempfile.gettempdir(), "dasklle-quality-5120.zarr"))
    Y = np.random.default_rng(1).normal(size=(ROWS, 2))
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, memory_limit="2GiB", dashboard_address=None
    )
    with cluster, Client(cluster):
        quality, before, peak = _peak_while(lambda: neighborhood_quality(X, Y, sample_size=2000))
    print(quality)
    print(f"client before {before / 2**20:.0f} MiB, peak during quality {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
