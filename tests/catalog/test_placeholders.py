"""``$text``/``$json``/``$yaml`` placeholders: resolved from the catalog's files, never fetched."""

import json
import socket
import textwrap
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from portal.catalog.importer import import_locations
from portal.catalog.models import Entity
from portal.config import Settings
from tests.catalog.test_folders import commit_repo, write

API = """\
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: {name}
  description: {description}
spec:
  type: openapi
  lifecycle: production
  owner: team-a
  definition:
    {key}: {target}
"""


def api(
    name: str, key: str = "$text", target: str = "./openapi.yaml", description: str = "x"
) -> str:
    return API.format(name=name, key=key, target=target, description=description)


def document(session: Session, name: str) -> dict[str, Any]:
    session.expire_all()
    return session.exec(select(Entity).where(Entity.name == name)).one().document


def test_relative_placeholders_are_resolved_as_text_json_and_yaml(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "catalog"
    openapi = "openapi: 3.0.0\ninfo: {title: Pets, version: '1', since: 2024-01-01}\n"
    write(root / "apis" / "openapi.yaml", openapi)
    write(root / "apis" / "openapi.json", json.dumps({"openapi": "3.1.0", "paths": {}}))
    write(root / "README.md", "Handles payments.\n")
    write(
        root / "apis" / "all.yaml",
        "---\n".join(
            [
                api("as-text", description="{$text: ../README.md}"),
                api("as-json", "$json", "openapi.json"),
                api("as-yaml", "$yaml", "./openapi.yaml"),
                # JSON Schema's $ref and non-string values are not placeholders.
                api("json-schema-ref", "$ref", "'#/definitions/x'"),
                api("list-value", "$text", "[a, b]"),
            ]
        ),
    )
    report = import_locations(session, [str(root)], settings)
    assert report.problems == []
    text = document(session, "as-text")
    assert text["metadata"]["description"] == "Handles payments.\n"
    assert text["spec"]["definition"] == openapi
    assert document(session, "as-json")["spec"]["definition"] == {"openapi": "3.1.0", "paths": {}}
    # $yaml reads like the catalog does: dates stay the text they are.
    assert document(session, "as-yaml")["spec"]["definition"] == {
        "openapi": "3.0.0",
        "info": {"title": "Pets", "version": "1", "since": "2024-01-01"},
    }
    assert document(session, "json-schema-ref")["spec"]["definition"] == {"$ref": "#/definitions/x"}
    assert document(session, "list-value")["spec"]["definition"] == {"$text": ["a", "b"]}


def test_a_placeholder_that_cannot_be_resolved_leaves_an_invalid_field(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path / "openapi.yaml", "openapi: 3.0.0\n")
    file = write(tmp_path / "api.yaml", api("undescribed", description="{$text: ./gone.md}"))
    report = import_locations(session, [str(file)], settings)
    assert [(p.line, p.field_path, p.message) for p in report.problems] == [
        (5, "metadata.description", "$text placeholder './gone.md': file not found"),
        (5, "metadata.description", "Input should be a valid string"),
    ]
    assert report.added == 0


def test_a_changed_placeholder_file_updates_the_entity(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path / "openapi.yaml", "openapi: 3.0.0\n")
    file = write(tmp_path / "api.yaml", api("pets"))
    import_locations(session, [str(file)], settings)
    write(tmp_path / "openapi.yaml", "openapi: 3.1.0\n")
    report = import_locations(session, [str(file)], settings)
    assert report.updated == 1
    assert document(session, "pets")["spec"]["definition"] == "openapi: 3.1.0\n"


def test_placeholders_that_escape_the_imported_folder_are_refused(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    secret = write(tmp_path / "secret.txt", "do not import\n")
    root = tmp_path / "catalog"
    (root / "team").mkdir(parents=True)
    (root / "team" / "link.txt").symlink_to(secret)
    write(root / "common" / "openapi.yaml", "openapi: 3.0.0\n")
    file = write(
        root / "team" / "apis.yaml",
        "---\n".join(
            [
                api("dotdot", target="../../../../../../../../etc/passwd"),
                api("absolute", target=str(secret)),
                api("symlink", target="./link.txt"),
                api("sibling", target="../common/openapi.yaml"),  # inside the root: read
            ]
        ),
    )
    report = import_locations(session, [str(root)], settings)
    refused = {p.entity_ref: (p.source, p.line, p.field_path) for p in report.problems}
    assert refused == {
        f"api:default/{name}": (str(file), 11 + 12 * index, "spec.definition")
        for index, name in enumerate(["dotdot", "absolute", "symlink"])
    }
    assert all(f"points outside {root}; it is not read" in p.message for p in report.problems)
    assert document(session, "dotdot")["spec"]["definition"] == {
        "$text": "../../../../../../../../etc/passwd"
    }
    assert document(session, "sibling")["spec"]["definition"] == "openapi: 3.0.0\n"


def test_remote_placeholders_are_reported_and_never_fetched(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/openapi.yaml"
        file = write(
            tmp_path / "api.yaml",
            api("remote", target=url) + "---\n" + api("remote-json", "$json", url),
        )
        report = import_locations(session, [str(file)], settings)
        try:
            server.accept()
        except BlockingIOError:
            pass  # nobody connected: the URL was not fetched
        else:
            raise AssertionError("the placeholder's URL was fetched")
    assert [(p.source, p.doc_index, p.line, p.field_path) for p in report.problems] == [
        (str(file), 0, 11, "spec.definition"),
        (str(file), 1, 23, "spec.definition"),
    ]
    assert report.problems[0].message == (
        f"$text placeholder {url!r} is not fetched: remote placeholders are never read "
        "(air-gapped portal); use a path relative to this file"
    )
    assert document(session, "remote")["spec"]["definition"] == {"$text": url}


def test_unreadable_placeholders_name_file_line_and_field(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path / "broken.json", "{not json")
    write(tmp_path / "two.yaml", "a: 1\n---\nb: 2\n")
    write(tmp_path / "bad.yaml", "a: [1, 2\n")
    file = write(
        tmp_path / "apis.yaml",
        "---\n".join(
            [
                api("missing", target="./missing.yaml"),
                api("bad-json", "$json", "./broken.json"),
                api("two-docs", "$yaml", "./two.yaml"),
                api("bad-yaml", "$yaml", "./bad.yaml"),
            ]
        ),
    )
    report = import_locations(session, [str(file)], settings)
    found = [(p.source, p.line, p.field_path, p.message) for p in report.problems]
    assert [where[:3] for where in found] == [
        (str(file), 11 + 12 * index, "spec.definition") for index in range(4)
    ]
    messages = [message for *_, message in found]
    assert messages[0] == "$text placeholder './missing.yaml': file not found"
    assert messages[1].startswith("$json placeholder './broken.json': not valid JSON: ")
    assert messages[2] == "$yaml placeholder './two.yaml': holds 2 YAML documents, not one"
    assert messages[3].startswith("$yaml placeholder './bad.yaml' line 2: YAML syntax error")
    assert report.added == 4  # stored with the placeholder as written


def test_placeholders_of_a_document_are_bounded_together(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path / "big.txt", "x" * 600)
    doc = api("bounded", target="./big.txt").replace(
        "  definition:", "  first: {$text: ./big.txt}\n  definition:"
    )
    file = write(tmp_path / "api.yaml", doc)
    small = settings.model_copy(update={"catalog_max_file_bytes": 1000})
    [problem] = import_locations(session, [str(file)], small).problems
    assert problem.field_path == "spec.definition"
    assert problem.message.endswith(
        "the document's placeholders read more than the 1000 byte limit"
    )
    assert document(session, "bounded")["spec"]["first"] == "x" * 600


def test_placeholders_in_a_git_repository(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "repo"
    write(work / "apis" / "openapi.yaml", "openapi: 3.0.0\n")
    write(
        work / "apis" / "all.yaml",
        api("in-git") + "---\n" + api("escapes", target="../../outside.yaml"),
    )
    url = commit_repo(work)
    report = import_locations(session, [f"{url}#main:apis"], settings)
    assert document(session, "in-git")["spec"]["definition"] == "openapi: 3.0.0\n"
    [problem] = report.problems
    assert (problem.source, problem.line, problem.entity_ref) == (
        f"{url}#main:apis/all.yaml",
        23,
        "api:default/escapes",
    )
    assert "points outside the repository" in problem.message


def test_placeholder_line_is_the_placeholder_key(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    file = write(
        tmp_path / "c.yaml",
        textwrap.dedent("""\
            apiVersion: backstage.io/v1alpha1
            kind: Component
            metadata:
              name: described
            spec:
              type: service
              lifecycle: production
              owner: team-a
              docs:
                - title: guide
                  body:
                    $text: ./gone.txt
            """),
    )
    [problem] = import_locations(session, [str(file)], settings).problems
    assert (problem.line, problem.field_path) == (12, "spec.docs[0].body")


def test_an_escaped_placeholder_key_is_still_a_placeholder(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path / "openapi.yaml", "openapi: 3.0.0\n")
    for name, key in [("x-escape", r'"\x24text"'), ("u-escape", r'"\u0024text"')]:
        file = write(tmp_path / f"{name}.yaml", api(name, key=key))
        assert "$" not in file.read_text(encoding="utf-8")
        assert import_locations(session, [str(file)], settings).problems == []
        assert document(session, name)["spec"]["definition"] == "openapi: 3.0.0\n"
