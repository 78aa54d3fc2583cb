"""The benchmark harness: a real side-by-side run on a small case, and the target verdicts."""

import json

from dasklle import bench, cli


def test_bench_side_by_side(tmp_path, capsys):
    out = tmp_path / "runs.json"
    code = cli.main(
        ["bench", "swiss-1k", "--vs", "sklearn", "--data-dir", str(tmp_path), "--json", str(out)]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "swiss-1k     dasklle" in table and "swiss-1k     sklearn" in table
    assert "sklearn/dasklle time" in table and "sine(dasklle, sklearn)" in table
    runs = {r["side"]: r for r in json.loads(out.read_text())}
    assert set(runs) == {"dasklle", "sklearn"}
    for r in runs.values():
        assert r["error"] is None
        assert r["peak_mb"] > 50  # a Python process with numpy loaded, sampled while running
        assert r["quality"]["trust"] > 0.9
    d = runs["dasklle"]["stages"]
    assert {"neighbors", "weights", "assemble", "eigen", "write", "total"} <= set(d)
    assert runs["dasklle"]["quality"]["recall"] == 1.0  # exact kNN at this size
    # the data set is cached and marked complete, so a second run does not regenerate it
    assert (tmp_path / "swiss-1k.zarr" / "zarr.json").exists()


def _run(side, case, seconds, peak_mb=1000.0, **quality):
    name, n = bench.CASES[case][:2]
    return bench.Run(side, case, n, 784, seconds, peak_mb, {}, quality)


def test_target_verdicts():
    runs = [
        _run("dasklle", "digits-20k", 9.0, trust=0.75, acc=0.76),
        _run("sklearn", "digits-20k", 200.0, trust=0.76, acc=0.77),
        _run("dasklle", "digits-70k", 80.0),
        _run("dasklle", "digits-100k", 100.0),
        _run("dasklle", "digits-1m", 1500.0, peak_mb=9000.0),
    ]
    lines = bench.target_checks(runs)
    assert lines[0].startswith("1. digits-20k: 22.2x") and lines[0].endswith(": met")
    assert lines[1].startswith("2. digits-70k") and lines[1].endswith("NOT met")  # 0.40 >= 1/3
    assert lines[2].startswith("3. digits-1m") and lines[2].endswith("NOT met")  # 8.8 GB > 8
    assert lines[3].startswith("6.") and lines[3].endswith(": NOT met")  # 15 > 12
    runs[0].quality["acc"] = 0.70  # too far below scikit-learn's accuracy
    assert bench.target_checks(runs)[0].endswith("NOT met")


def test_bench_rejects_unknown_case(capsys):
    try:
        cli.main(["bench", "nope"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "invalid choice" in capsys.readouterr().err
