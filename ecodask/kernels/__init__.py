"""Pure per-chunk functions on numpy arrays: no dask, no I/O, no configuration."""
