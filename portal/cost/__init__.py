"""Cost: what each service and team costs, by OpenCost's allocation model.

Today the pure model (prices, the per-cluster price sheet, per-container allocation) and
the exact Kubernetes quantity parser; the Cost pages will live here next. This package
imports nothing of review or scaffolding: the review's cost check imports it.
"""
