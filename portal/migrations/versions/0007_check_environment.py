"""A check run names its environment in a column, not only inside its name ("schema (prod)").

Existing runs are back-filled from their names; a run of the service's own files keeps None.

Revision ID: 0007_check_environment
Revises: 0006_decision_claim
Create Date: 2026-11-25
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0007_check_environment"
down_revision = "0006_decision_claim"
branch_labels = None
depends_on = None

# How check names carried their environment until now: "<check> (<environment>)".
_NAMED = re.compile(r"^.+? \((?P<environment>[^()]{1,63})\)$")
_SLICE = 500


def upgrade() -> None:
    with op.batch_alter_table("review_check") as batch:
        batch.add_column(sa.Column("environment", sa.String(63), nullable=True))
    checks = sa.table(
        "review_check",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("environment", sa.String),
    )
    connection = op.get_bind()
    named = connection.execute(
        sa.select(checks.c.id, checks.c.name).where(checks.c.name.like("% (%)"))
    ).all()
    by_environment: dict[str, list[int]] = {}
    for check_id, name in named:
        if match := _NAMED.match(name):
            by_environment.setdefault(match["environment"], []).append(check_id)
    for environment, ids in by_environment.items():
        # In slices: SQLite limits the bound parameters of one statement.
        for start in range(0, len(ids), _SLICE):
            connection.execute(
                sa.update(checks)
                .where(checks.c.id.in_(ids[start : start + _SLICE]))
                .values(environment=environment)
            )


def downgrade() -> None:
    with op.batch_alter_table("review_check") as batch:
        batch.drop_column("environment")
