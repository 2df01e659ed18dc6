"""The change page groups check runs by the environment column each run stores."""

from __future__ import annotations

from portal.changes.models import CheckRun
from portal.review.change_page import group_checks


def run(name: str, environment: str | None = None) -> CheckRun:
    return CheckRun(change_id="c1", name=name, environment=environment, status="passed", summary="")


def test_runs_are_grouped_by_their_environment_column_service_files_first() -> None:
    runs = [
        run("kustomize (dev)", "dev"),
        run("policy"),
        run("schema (dev)", "dev"),
        run("kustomize (prod)", "prod"),
        run("collisions"),
    ]

    groups = group_checks(runs)

    assert [group.environment for group in groups] == [None, "dev", "prod"]
    assert [group.label for group in groups] == [
        "Service files",
        "Environment dev",
        "Environment prod",
    ]
    assert [check for check, _ in groups[0].runs] == ["policy", "collisions"]
    assert [check for check, _ in groups[1].runs] == ["kustomize", "schema"]
    assert groups[2].runs[0][1] is runs[3]


def test_a_name_that_only_looks_like_an_environment_is_not_one() -> None:
    # Before the column, "(...)" at the end of a name was taken for the environment.
    groups = group_checks([run("semantics (beta)"), run("cost (prod)", "prod")])

    assert [group.environment for group in groups] == [None, "prod"]
    assert groups[0].runs[0][0] == "semantics (beta)"
    assert groups[1].runs[0][0] == "cost"
