"""Shared pieces of the catalog page tests: extra entities, sign-in, reading the pages."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import csrf_token

# Entities the example catalogs lack: a titled group, a title that sorts apart from its
# name, references to entities nobody imported, and a user in no group.
EXTRA_ENTITIES = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: design-team, title: "Design & Research"}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: zeta-widget, title: Alpha widget}
spec:
  type: service
  lifecycle: production
  owner: design-team
  system: artist-engagement-portal
  dependsOn: [component:ghost-service, resource:artists-db]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: orphan-owned}
spec: {type: library, lifecycle: experimental, owner: group:default/vanished-team}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: solo.person}
spec: {profile: {displayName: Solo Person}, memberOf: []}
"""


def write_extra_entities(folder: Path) -> Path:
    """Write :data:`EXTRA_ENTITIES` into ``folder`` and return the file."""
    path = folder / "extra.yaml"
    path.write_text(EXTRA_ENTITIES, encoding="utf-8")
    return path


def sign_in(client: TestClient, user: str) -> None:
    """Sign in locally as a catalog User (``user:default/name``)."""
    token = csrf_token(client, "/auth/sign-in")
    response = client.post(
        "/auth/sign-in", data={"user": user, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


_ROW = re.compile(r"<tr>\s*<td class=\"name\">(.*?)</tr>", re.S)
_CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
_TAG = re.compile(r"<[^>]+>")


def text_of(html: str) -> str:
    """Return the visible text of an HTML snippet, whitespace collapsed."""
    return " ".join(unescape(_TAG.sub(" ", html)).split())


def list_rows(html: str) -> list[list[str]]:
    """Return the cells' text of every entity row of the list page (name, kind, type, ...)."""
    rows = []
    for row in _ROW.findall(html):
        first, _, rest = row.partition("</td>")
        rows.append([text_of(first), *(text_of(cell) for cell in _CELL.findall(rest))])
    return rows


def section(html: str, heading_id: str) -> str:
    """Return the HTML of the card whose heading has ``id=heading_id``."""
    start = html.index(f'id="{heading_id}"')
    return html[start : html.index("</section>", start)]
