"""The pictures: what each draws (legend, frame, density colours, spectrum estimates, sweep marks,
reconstructions), checked on the figures and the numbers behind them."""

import numpy as np
import pytest

from dasklle import LocallyLinearEmbedding, plotting
from dasklle.metrics import neighborhood_quality, neighborhood_scores
from dasklle.plotting import reconstruction, style
from dasklle.sweep import SweepRow, suggest


def axes():
    plt = style.pyplot()
    fig, ax = plt.subplots()
    return fig, ax


def test_categories_get_a_legend_with_counts_and_a_frame_without_far_outliers():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((3000, 2))
    Y[:2] = [[1e3, 0], [0, -1e3]]  # two far outliers
    labels = np.repeat(["a", "b", "c"], 1000)
    fig, ax = axes()
    outside = plotting.draw_embedding(ax, Y, labels=labels)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["a (1,000)", "b (1,000)", "c (1,000)"]
    assert outside == 2
    assert ax.get_xlim()[1] < 10 and ax.get_ylim()[0] > -10
    style.pyplot().close(fig)


def test_many_distinct_values_get_a_colour_bar_instead():
    Y = np.random.default_rng(1).standard_normal((500, 2))
    fig, ax = axes()
    plotting.draw_embedding(ax, Y, labels=np.arange(500))
    assert ax.get_legend() is None and len(fig.axes) == 2  # the colour bar's axes
    style.pyplot().close(fig)


def test_above_the_density_threshold_cells_take_their_majority_category_colour(monkeypatch):
    monkeypatch.setattr("dasklle.plotting.embedding.DENSITY_ABOVE", 1000)
    rng = np.random.default_rng(2)
    left = rng.uniform([-2, -1], [-1, 1], (4000, 2))
    right = rng.uniform([1, -1], [2, 1], (4000, 2))
    fig, ax = axes()
    plotting.draw_embedding(ax, np.r_[left, right], labels=np.repeat([0, 1], 4000))
    image = ax.get_images()[0].get_array()
    colours = style.category_colours(2)[:, :3]
    g = image.shape[1]
    painted = ~np.all(np.asarray(image) == 1.0, axis=2)
    for half, colour in ((slice(0, g // 2), colours[0]), (slice(g // 2, g), colours[1])):
        cells = np.asarray(image)[:, half][painted[:, half]]
        assert len(cells) > 100
        # shaded towards white by density: every channel moved by the same share of the way
        moved = colour < 0.99  # channels that differ from white
        shade = (1 - cells[:, moved]) / (1 - colour[moved])
        assert np.ptp(shade, axis=1).max() < 1e-6
    style.pyplot().close(fig)


def test_the_spectrum_draws_the_estimates_until_one_is_vaguer_than_itself(tmp_path, monkeypatch):
    drawn = {}
    original = plotting.diagnostics.save

    def keep(fig, path):
        drawn["fig"] = fig
        original(fig, path)

    monkeypatch.setattr(plotting.diagnostics, "save", keep)
    estimates = np.array([[3e-3, 1e-9], [4e-3, 1e-4], [5e-3, 6e-3], [6e-3, 1e-9]])
    plotting.plot_spectrum([1e-4, 2e-3], 2, tmp_path / "s.png", estimates=estimates)
    ax = drawn["fig"].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["kept", "estimated (± residual)"]
    line = ax.get_lines()[0]  # the grey line through every value drawn
    np.testing.assert_allclose(line.get_ydata(), [1e-4, 2e-3, 3e-3, 4e-3])
    note = [t.get_text() for t in ax.texts][0]
    assert "after 2 (cut-off): x1.50" in note and "largest, after 1: x20.00" in note


def row(k, d, trust, cont):
    return SweepRow(k, d, 0.0, "dense", 0.0, trust, cont)


def test_the_suggestion_is_the_fewest_components_near_the_best_score():
    rows = [
        row(5, 2, 0.80, 0.80), row(10, 2, 0.85, 0.85),
        row(5, 4, 0.93, 0.95), row(10, 4, 0.945, 0.945),
        row(5, 8, 0.95, 0.95), row(10, 8, 0.94, 0.94),
    ]  # fmt: skip
    assert suggest(rows) == (10, 4)  # 0.945 is within 0.01 of the best, 0.95 at d=8
    assert suggest([row(5, 2, None, None)]) is None


def test_sweep_annotations_read_on_their_cells(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plotting.diagnostics, "save", lambda fig, path: drawn.setdefault("f", fig))
    errors = np.array([[1e-4, 1e-3], [1e-2, 1e-1]])
    scores = np.array([[0.80, 0.90], [0.85, 0.95]])
    plotting.plot_sweep([5, 10], [2, 4], errors, tmp_path / "s.png", scores=scores,
                        suggestion=(10, 2))  # fmt: skip
    left, right = drawn["f"].axes[:2]  # the colour bars come after
    for ax in (left, right):
        image = ax.get_images()[0]
        for text in ax.texts:
            j, i = (round(v) for v in text.get_position())
            cell = image.cmap(image.norm(image.get_array()[i, j]))
            assert text.get_color() == style.text_colour(cell)
    # each column of the error map is on its own scale: both columns span 0..1
    relative = right.get_images()[0].get_array()
    np.testing.assert_allclose(relative.min(axis=0), 0) and np.testing.assert_allclose(
        relative.max(axis=0), 1
    )
    star = [line for line in left.get_lines() if line.get_marker() == "*"]
    assert len(star) == 1 and round(star[0].get_ydata()[0] + 0.28) == 1  # the k=10 row


def test_scores_of_several_embeddings_in_one_pass_match_one_at_a_time():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 5))
    embeddings = [X[:, :2], X[:, :3] + 0.1 * rng.standard_normal((600, 3))]
    together = neighborhood_scores(X, embeddings, sample_size=200)
    for Y, (trust, cont) in zip(embeddings, together, strict=True):
        alone = neighborhood_quality(X, Y, sample_size=200)
        assert trust == pytest.approx(alone["trustworthiness"], abs=1e-12)
        assert cont == pytest.approx(alone["continuity"], abs=1e-12)


@pytest.fixture(scope="module")
def digits_fit():
    from dasklle import datasets

    X, _ = datasets.digits_784(500, random_state=0)
    X = X.compute()
    return X, LocallyLinearEmbedding(n_neighbors=10, random_state=0).fit(X)


def test_local_errors_are_those_of_the_fitted_weights(digits_fit):
    X, model = digits_fit
    nbrs, w = model.neighbor_indices_, model.weights_
    errors = reconstruction.local_errors(X.astype(float), X[nbrs].astype(float), w)
    i = 7
    rebuilt = w[i] @ X[nbrs[i]].astype(float)
    spread = np.mean(np.sum((X[nbrs[i]].astype(float) - X[i]) ** 2, axis=1))
    assert errors[i] == pytest.approx(np.sum((X[i] - rebuilt) ** 2) / spread, rel=1e-9)
    # a point that is exactly the weighted mean of its neighbors has no error
    exact = np.einsum("pk,pkd->pd", w[:3], X[nbrs[:3]].astype(float))
    assert np.allclose(reconstruction.local_errors(exact, X[nbrs[:3]].astype(float), w[:3]), 0)


def test_the_reconstruction_views_are_written_for_images_and_low_dimensions(digits_fit, tmp_path):
    X, model = digits_fit
    nbrs, w = model.neighbor_indices_, model.weights_
    plotting.plot_reconstructions(X, nbrs, w, tmp_path / "r.png", image_shape=(28, 28))
    plotting.plot_weight_preservation(X, model.embedding_, nbrs, w, tmp_path / "p.png")
    roll = np.random.default_rng(4).standard_normal((300, 3))
    small = LocallyLinearEmbedding(n_neighbors=8, random_state=0).fit(roll)
    plotting.plot_reconstructions(roll, small.neighbor_indices_, small.weights_, tmp_path / "g.png")
    for name in ("r", "p", "g"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


@pytest.mark.parametrize("solver", ["dense", "arpack", "factored", "amg"])
def test_eigenvalue_estimates_lie_within_their_residual_of_an_eigenvalue(digits_fit, solver):
    X, _ = digits_fit
    model = LocallyLinearEmbedding(
        n_neighbors=10, eigen_solver=solver, random_state=0, tol=1e-8 if solver == "amg" else "auto"
    ).fit(X)
    estimates = model.eigenvalue_estimates_
    # amg in the client: its block's extra vectors (eigen.inverse-extra-vectors), the others 8
    assert len(estimates) >= (2 if solver == "amg" else 8)
    exact = np.linalg.eigvalsh(model.get_cost_matrix().toarray())
    for value, residual in estimates:
        assert np.min(np.abs(exact - value)) <= residual * (1 + 1e-6) + 1e-12
    shown = min(3, len(estimates))  # the next ones, found
    np.testing.assert_allclose(estimates[:shown, 0], exact[3 : 3 + shown], rtol=1e-5)
