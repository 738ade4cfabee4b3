"""Every Dask graph builder: the passes over chunked arrays (the land pass, class counts, strata
sums, regression moments, neighbour passes, overviews) that call the kernels chunk by chunk and
reduce their small results. No configuration, no files but the Zarr chunks a pass writes."""
