"""Scale-out on a Ray cluster: `tabline sample --ray` and `tabline run --ray` (docs/ray.md).

- `tabline.cluster.connect` — `RayConfig` (address, actors, restarts) and `connect`, which joins or starts
  the cluster with a connect timeout, and says how to install Ray when it is missing.
- `tabline.cluster.sampling` — rows in fixed-size chunks with a seed per chunk, sampled by actors that
  each hold one replica of the model: the same rows as the local chunked path, whatever the actor count.
- `tabline.cluster.stations` — the line's heavy stations (LM and LLM workers, judges) as Ray actors; the
  driver keeps the graph, the coordinator, QC and the checkpoint.
- `tabline.cluster.budget` — one LLM request budget (concurrency, requests per minute) for the whole cluster.

Ray is an optional extra (``pip install -e ".[ray]"``); nothing here imports it before it is needed.
"""
