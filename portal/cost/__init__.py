"""Cost: what each service and team costs, by OpenCost's allocation model.

The pure model (prices, the per-cluster price sheet, per-container allocation, the exact
Kubernetes quantity parser), the estimate from manifests that the review's cost check and
the ``/cost`` page share, and the page itself (estimates from GitOps ``main`` until the
measured sources, Prometheus and OpenCost, feed it). This package imports nothing of
review or scaffolding: the review's cost check imports it.
"""
