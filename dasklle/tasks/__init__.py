"""How work is cut into dask tasks: sizes from the workers' memory, row-block maps, progress."""
