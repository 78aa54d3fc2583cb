"""Embed a large zarr array on a Slurm cluster, with workers started by dask-jobqueue.

Run it on a login node (or inside a small driver job, see slurm_batch.sh):

    pip install dasklle dask-jobqueue
    python examples/slurm_dask_jobqueue.py INPUT.zarr --out embedding.zarr --jobs 8

Each Slurm job runs one dask worker process with ``--cores`` threads and ``--memory``; the
embedding and its metadata are written to ``--out``. ``--dry-run`` prints the worker job script
that would be submitted and exits (works without Slurm, to check the settings).
"""

import argparse
import shutil
import sys

from dasklle import LocallyLinearEmbedding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", help="zarr array or store (with an array 'X').")
    parser.add_argument("--out", default="embedding.zarr")
    parser.add_argument("--jobs", type=int, default=4, help="Slurm jobs (one worker each).")
    parser.add_argument("--cores", type=int, default=8, help="cores per job.")
    parser.add_argument("--memory", default="32GiB", help="memory per job.")
    parser.add_argument("--walltime", default="02:00:00")
    parser.add_argument("--queue", default=None, help="Slurm partition.")
    parser.add_argument("--account", default=None)
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument(
        "--interface", default=None, help="network interface the workers reach the scheduler on."
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the job script and exit (the scheduler then listens on 127.0.0.1 only).",
    )
    args = parser.parse_args()

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        sys.exit("slurm_dask_jobqueue.py needs dask-jobqueue: pip install dask-jobqueue")
    from distributed import Client

    if not args.dry_run and not args.input:
        parser.error("INPUT is required unless --dry-run is given.")
    if not args.dry_run and shutil.which("sbatch") is None:
        # without it the worker jobs are never submitted and the run would wait for ever
        sys.exit("no Slurm here (sbatch is not on PATH); --dry-run prints the worker job script.")

    cluster = SLURMCluster(
        cores=args.cores,
        processes=1,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        # numba (pynndescent) ignores the OMP/MKL limits dask sets: cap its threads too.
        job_script_prologue=[f"export NUMBA_NUM_THREADS={args.cores}"],
        interface=args.interface,
        # The dashboard stays on the scheduler's host; reach it with an SSH tunnel.
        scheduler_options={
            "dashboard_address": "127.0.0.1:8787",
            **({"host": "127.0.0.1"} if args.dry_run else {}),
        },
    )
    if args.dry_run:
        print(cluster.job_script())
        cluster.close()
        return
    cluster.scale(jobs=args.jobs)
    with Client(cluster) as client:
        client.wait_for_workers(1)
        lle = LocallyLinearEmbedding(
            n_neighbors=args.n_neighbors, random_state=0, store=args.out, verbose=True
        )
        lle.fit(args.input)
        print(f"wrote {args.out}: solver {lle.eigen_solver_}, timings {lle.timings_}")
    cluster.close()


if __name__ == "__main__":
    main()
