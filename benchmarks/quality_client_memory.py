"""Peak memory of the client while dasklle measures an embedding's quality on a 2-worker cluster.

    python benchmarks/quality_client_memory.py

Writes a 30,000 x 5,120 float32 zarr array once (under $TMPDIR), then runs
``neighborhood_quality`` with a sample of 2,000 points and prints the client's resident memory
before and at its peak (sampled every 20 ms).
"""

import os
import tempfile
import threading
import time

import numpy as np
import psutil


def main():
    import dask.array as da
    import zarr
    from distributed import Client, LocalCluster

    from dasklle.metrics import neighborhood_quality

    path = os.path.join(tempfile.gettempdir(), "dasklle-quality-5120.zarr")
    if not os.path.exists(path):
        rng = np.random.default_rng(0)
        z = zarr.open_array(path, mode="w", shape=(30000, 5120), chunks=(1000, 5120), dtype="f4")
        for s in range(0, 30000, 1000):
            z[s : s + 1000] = rng.normal(size=(1000, 5120)).astype("f4")
    X = da.from_zarr(path)
    Y = np.random.default_rng(1).normal(size=(30000, 2))
    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit="2GiB", dashboard_address=None
        ) as c,
        Client(c),
    ):
        base = proc.memory_info().rss
        t = threading.Thread(target=watch, daemon=True)
        t.start()
        q = neighborhood_quality(X, Y, sample_size=2000)
        stop.set()
    print(q, f"client before {base / 2**20:.0f} MiB, peak during quality {peak[0] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
