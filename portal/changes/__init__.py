"""The change life cycle, below the scaffold and review domains that both work on changes.

A change is one proposed branch of the GitOps repository. This package holds what every
kind of change shares: its tables (the change, its check runs, its audit log), reading and
writing them, claiming a change for a worker or for one decision, and the GitOps handle
a request or a worker uses. It imports no domain: scaffolding creates and renders changes,
review checks and decides them, and neither needs the other.
"""
