"""The evidence a proposer supplies with a change: text, links and figures (images).

Each item has a label and exactly one of ``url`` (an http or https link, shown as a link),
``text`` (shown as text) or ``figure`` (a PNG, JPEG, GIF or WebP image as a ``data:`` URL,
shown inline: nothing is fetched). Problems name the field, e.g. ``evidence[1].url``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from portal.scaffold.answers import text_problem

MAX_ITEMS = 20
MAX_LABEL = 200
MAX_URL = 2000
MAX_TEXT = 10_000
MAX_FIGURE_BYTES = 512 * 1024
_FIGURE = re.compile(r"^data:image/(?P<type>png|jpeg|gif|webp);base64,(?P<data>[A-Za-z0-9+/=\s]+)$")
# The first bytes of each image type: a figure must be the image it says it is.
_MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "webp": (b"RIFF",),
}


@dataclass(frozen=True)
class EvidenceItem:
    """One piece of evidence as it was sent."""

    label: str
    url: str | None = None
    text: str | None = None
    figure: str | None = None


def _url_problem(url: str) -> str | None:
    if len(url) > MAX_URL:
        return f"at most {MAX_URL:,} characters"
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "an http or https URL with a host"
    if parts.username or parts.password:
        return "a URL without credentials (it is stored and shown)"
    return text_problem(url, multiline=False)


def _figure_problem(figure: str) -> str | None:
    match = _FIGURE.match(figure)
    if match is None:
        return "a data URL of a PNG, JPEG, GIF or WebP image (data:image/png;base64,...)"
    try:
        data = base64.b64decode("".join(match["data"].split()), validate=True)
    except (binascii.Error, ValueError):
        return "the image is not valid base64"
    if len(data) > MAX_FIGURE_BYTES:
        return f"at most {MAX_FIGURE_BYTES // 1024} KiB of image (this one has {len(data):,} bytes)"
    if not data.startswith(_MAGIC[match["type"]]):
        return f"the data is not a {match['type'].upper()} image"
    return None


def checked_evidence(items: Sequence[EvidenceItem], errors: dict[str, str]) -> list[dict[str, str]]:
    """Return the evidence as stored (one dict per item); add each problem to ``errors``."""
    if len(items) > MAX_ITEMS:
        errors["evidence"] = f"at most {MAX_ITEMS} pieces of evidence"
        return []
    stored: list[dict[str, str]] = []
    for index, item in enumerate(items):
        where = f"evidence[{index}]"
        label = item.label.strip()
        problem = text_problem(label, multiline=False)
        if problem is None and not 0 < len(label) <= MAX_LABEL:
            problem = f"1 to {MAX_LABEL} characters"
        if problem is not None:
            errors[f"{where}.label"] = problem
        given = {
            key: value
            for key, value in (("url", item.url), ("text", item.text), ("figure", item.figure))
            if value is not None
        }
        if len(given) != 1:
            errors[where] = "give exactly one of url, text or figure"
            continue
        ((key, value),) = given.items()
        check = {"url": _url_problem, "figure": _figure_problem}.get(key)
        if key == "text":
            problem = text_problem(value) or (
                f"at most {MAX_TEXT:,} characters" if len(value) > MAX_TEXT else None
            )
        else:
            assert check is not None
            problem = check(value)
        if problem is not None:
            errors[f"{where}.{key}"] = problem
        elif f"{where}.label" not in errors:
            stored.append({"label": label, key: value})
    return stored
