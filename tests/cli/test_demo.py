"""dasklle demo: a swiss roll into a store and a PNG."""

from dasklle.cli import main
from dasklle.io.store import read_embedding


def test_demo_writes_store_and_plot(tmp_path, capsys):
    out = tmp_path / "demo.zarr"
    code = main(["demo", "--n-samples", "1500", "--out", str(out), "--scheduler", "synchronous"])
    assert code == 0
    embedding, attributes = read_embedding(out)
    assert embedding.shape == (1500, 2) and attributes["complete"]
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert "embedded 1,500 points" in capsys.readouterr().out
