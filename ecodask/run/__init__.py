"""A run, the only package that knows the run configuration: the configuration and its checks,
the inputs checked and hashed once, the stage records (``stages/``), resume, the cluster and the
run record."""
