"""What free text people type into the portal may hold: answers, reasons, comments, names.

One rule for every domain, so a character refused in one form is refused in all of them.
Pure and a leaf (it imports nothing of the portal; an import-linter contract keeps it so):
callers put what is found into their own messages.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the bidirectional overrides that make text read other than
# it is stored ("Trojan Source"); tab, line feed and carriage return are checked apart.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
LINE_BREAK = re.compile(r"[\t\n\r]")


def lone_surrogate(text: str) -> str | None:
    r"""Say where ``text`` stops being encodable UTF-8, e.g. ``U+D800 at position 1``, or None.

    Only a lone surrogate (such as ``"\ud800"``) makes a Python string unencodable.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"U+{ord(text[error.start]):04X} at position {error.start + 1}"
    return None


def control_character(text: str, *, multiline: bool = True) -> tuple[str, int] | None:
    """Return the first refused control character of ``text`` (``U+001B``, 1-based position).

    Tab, line feed and carriage return are refused only with ``multiline=False``.
    """
    found = CONTROL.search(text) or (None if multiline else LINE_BREAK.search(text))
    if found is None:
        return None
    return f"U+{ord(found.group()):04X}", found.start() + 1
