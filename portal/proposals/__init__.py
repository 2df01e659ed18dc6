"""Proposing changes to services that already exist: ``POST /api/changes``.

A person of the owning team, or a service-account API token scoped to the service, sends
edits (whole files or patches of one object, :mod:`portal.changes.edits`) with a title, a
reason and evidence. The edits are applied to the current ``main`` and committed on a
branch ``change/<service>/<id>``; the change then goes through the same checks, diff,
four-eyes approval and audit log as a scaffold (the check stage picks it up). This package
sits above ``portal.changes``, ``portal.auth`` and the catalog (who owns the service).
"""
