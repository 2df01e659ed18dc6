"""Cost: what each service and team costs, by OpenCost's allocation model.

The pure model (prices, the per-cluster price sheet, per-container allocation, the exact
Kubernetes quantity parser), the estimate from manifests that the review's cost check and
the pages share, measured days from OpenCost or Prometheus priced per environment
(``measured``, ``windows``, ``figures``, ``runtime``), the overview, team and service pages,
LLM token prices and right-sizing. This package imports nothing of review or scaffolding:
the review's cost check imports it, and the right-sizing proposal lives in
``portal.proposals``.
"""
