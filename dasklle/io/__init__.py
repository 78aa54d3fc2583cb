"""Reading inputs lazily, and the zarr store that holds results and checkpoints."""
