"""Input and output: catalogs, grids, ingest to Zarr, and table writers."""
