#!/bin/bash
# A small driver job: it submits the worker jobs through dask-jobqueue and waits for the result.
#   sbatch examples/slurm_batch.sh /path/to/digits.zarr /path/to/embedding.zarr
#SBATCH --job-name=dasklle-driver
#SBATCH --cpus-per-task=2
#SBATCH --mem=16G
#SBATCH --time=03:00:00
set -euo pipefail
INPUT=${1:?usage: sbatch slurm_batch.sh INPUT.zarr OUT.zarr}
OUT=${2:-embedding.zarr}
python examples/slurm_dask_jobqueue.py "$INPUT" --out "$OUT" --jobs 8 --cores 8 --memory 32GiB
# Alternative without dask-jobqueue: start a scheduler and workers yourself (e.g. with srun) and
#   dasklle embed "$INPUT" --out "$OUT" --scheduler-file scheduler.json
