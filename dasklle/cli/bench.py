"""``dasklle bench``: benchmark cases, side by side with scikit-learn, each side in a fresh process
(the harness is ``dasklle.bench``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from ..bench import CASES, QUALITY_SAMPLE

HELP = "benchmark cases, side by side with scikit-learn (--vs sklearn), each in a fresh process."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "cases",
        nargs="+",
        choices=sorted(CASES),
        metavar="CASE",
        help=f"cases to run: {', '.join(CASES)}.",
    )
    parser.add_argument(
        "--vs",
        choices=("sklearn",),
        help="also run scikit-learn's LLE (arpack) on the same data.",
    )
    parser.add_argument(
        "--data-dir",
        default=os.path.join(tempfile.gettempdir(), "dasklle-bench"),
        help="where generated data sets are cached (zarr).",
    )
    parser.add_argument(
        "--quality-sample",
        type=int,
        default=QUALITY_SAMPLE,
        help="points sampled for recall and trustworthiness.",
    )
    parser.add_argument("--json", help="also write the results to this JSON file.")
    parser.add_argument(
        "--workers",
        type=int,
        help="run dasklle on a local cluster of this many single-threaded workers (default: "
        "the threaded scheduler in one process).",
    )
    parser.add_argument(
        "--memory-limit",
        default="1GiB",
        help="memory limit of each worker, with --workers (dask kills a worker that exceeds it).",
    )


def run(args: argparse.Namespace) -> int:
    """Run every case (both sides with --vs sklearn), then print the table; 1 if a run failed."""
    from .. import bench

    os.makedirs(args.data_dir, exist_ok=True)
    runs: list[bench.Run] = []
    sines: dict[str, float | None] = {}
    cluster = (args.workers, args.memory_limit) if args.workers else None
    with tempfile.TemporaryDirectory() as out_dir:
        for case in args.cases:
            bench.dataset_path(case, args.data_dir)  # generate once, untimed
            for side in ("dasklle", "sklearn") if args.vs == "sklearn" else ("dasklle",):
                name, n = CASES[case][:2]
                if side == "sklearn" and n > bench.SKLEARN_MAX_ROWS[name]:
                    print(f"skipping sklearn on {case}: too slow", file=sys.stderr, flush=True)
                    continue
                print(f"running {side} on {case} ...", file=sys.stderr, flush=True)
                r = bench.run_side(side, case, args.data_dir, out_dir, cluster)
                bench.measure_quality(r, args.data_dir, out_dir, args.quality_sample)
                runs.append(r)
            sines[case] = bench.sine(out_dir, case)
    print(bench.format_table(runs, sines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.__dict__ for r in runs], f, indent=2)
    return 0 if not any(r.error for r in runs) else 1
