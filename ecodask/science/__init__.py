"""The science as pure functions and small tables (numpy, pandas, scipy): catalog types, the grid,
land use, the ESV model, the Geographical Detector, discretization, regression, hot-spot classes,
the footprint and compensation. No I/O, no configuration, no Dask graph."""
