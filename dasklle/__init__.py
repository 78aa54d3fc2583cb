"""dasklle: Locally Linear Embedding that scales past one machine's memory, on Dask."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dasklle")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+unknown"

from .estimator import LocallyLinearEmbedding, locally_linear_embedding
from .pipeline import DisconnectedGraphWarning

__all__ = [
    "DisconnectedGraphWarning",
    "LocallyLinearEmbedding",
    "__version__",
    "locally_linear_embedding",
]
