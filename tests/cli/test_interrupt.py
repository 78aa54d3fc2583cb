"""Ctrl-C: one line saying what was kept and how to resume, exit code 130, no tracebacks from
the cluster's processes; the same command then resumes."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_on_a_local_cluster_prints_one_line_and_the_rerun_resumes(tmp_path):
    from dasklle import datasets

    X, _ = datasets.digits_784(6000, random_state=0)
    np.save(tmp_path / "x.npy", X.compute())
    argv = [sys.executable, "-m", "dasklle", "embed", str(tmp_path / "x.npy"), "--out",
            str(tmp_path / "e.zarr"), "--n-workers", "2", "--quality-sample", "0"]  # fmt: skip
    # an eigen solve that runs to its iteration cap, so that the signal lands inside it
    slow = {**os.environ, "DASK_DASKLLE__EIGEN__AMG_TOL": "1e-15"}
    # its own process group, as a terminal's foreground job: SIGINT goes to every process in it
    # (SIGINT back to its default there: a job started in the background of a script inherits
    # it ignored, and the test would then see a run that cannot be interrupted)
    run = subprocess.Popen(
        argv,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=slow,
        preexec_fn=_default_sigint,
    )
    lines, solving = [], threading.Event()

    def read():
        for line in run.stderr:
            lines.append((time.monotonic(), line))
            if "eigen ..." in line:
                solving.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert solving.wait(180), "".join(line for _, line in lines)
    time.sleep(1.0)
    sent = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    run.wait(120)
    reader.join()
    after = [line for when, line in lines if when >= sent]
    assert run.returncode == 130, "".join(after)
    assert len(after) == 1, "".join(after)
    assert after[0].startswith("dasklle embed: interrupted;")
    assert "(neighbors, weights)" in after[0] and "run the same command again" in after[0]

    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    for stage in ("neighbors", "weights"):
        assert f"{stage}: resumed from the store's checkpoint" in rerun.stderr, rerun.stderr
