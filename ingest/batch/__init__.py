"""Batch listing checks split into reader -> mapper -> writer, so that the same code checks
listings in this process or on a Dask cluster.

- `work`: a listing to check (`ListingTask`: its identity, details and photo bytes), what a
  check computes from it (`compute`: a pure function of the services, no writes) and how the
  result is stored (`commit_chunk`: idempotent, by the one process that writes).
- `cluster`: the Dask side: a worker plugin that builds the services once per worker, and a
  mapper that keeps chunks in flight and hands back results as they complete.
"""

__all__: list[str] = []
