"""Pictures of an embedding and its diagnostics (matplotlib, written to PNG; no display needed).

- ``plot_embedding``: the embedding, coloured by label;
- ``plot_spectrum``, ``plot_cost_matrix``, ``plot_sweep``: for choosing parameters and checking M;
- ``plot_reconstructions``, ``plot_weight_preservation``: what the weights do, point by point.
"""

from .diagnostics import MATRIX_MAX_ROWS, plot_cost_matrix, plot_spectrum, plot_sweep
from .embedding import DENSITY_ABOVE, draw_embedding, plot_embedding
from .reconstruction import plot_reconstructions, plot_weight_preservation

__all__ = [
    "DENSITY_ABOVE",
    "MATRIX_MAX_ROWS",
    "draw_embedding",
    "plot_cost_matrix",
    "plot_embedding",
    "plot_reconstructions",
    "plot_spectrum",
    "plot_sweep",
    "plot_weight_preservation",
]
