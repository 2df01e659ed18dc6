"""The approval gate: what a change's checks say about approving it, and an admin's override.

A check that failed, or that could not run (``error``: a crash, a missing tool), blocks
the approval; so do checks that have not finished, or none having run at all. Warnings
never block: the change page lists them beside the buttons. A platform admin may approve
over failed checks (never over unfinished ones) with a written reason, which
:mod:`portal.review.decide` records on the change, in the audit log and in the merge
commit's message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portal.changes.models import CheckRun
from portal.free_text import control_character, lone_surrogate

# The outcomes of portal.review.checks.CheckStatus (not imported: that module pulls in every
# check's tools). Any other status (a future "pending" or "running") counts as unfinished,
# so an unknown status blocks an approval rather than letting it through.
BLOCKING_STATUSES = frozenset({"failed", "error"})
FINISHED_STATUSES = frozenset({"passed", "warning", *BLOCKING_STATUSES})

REASON_FIELD = "override_reason"
CHECKS_FIELD = "override_checks"
REASON_MIN_LENGTH = 10
REASON_MAX_LENGTH = 2_000


@dataclass(frozen=True)
class Gate:
    """What the checks of a change say about approving it, check names in run order."""

    blocking: tuple[str, ...] = ()  # failed or could not run
    warnings: tuple[str, ...] = ()
    unfinished: tuple[str, ...] = ()  # a status that is not an outcome yet
    ran: bool = False  # any check recorded at all

    @property
    def waiting(self) -> bool:
        """True while the checks cannot vouch for the change yet: none ran, or not all ended."""
        return not self.ran or bool(self.unfinished)

    @property
    def open(self) -> bool:
        """True when nothing stops an ordinary approval."""
        return not self.waiting and not self.blocking

    def why_waiting(self) -> str:
        """Say why the checks cannot vouch for the change yet (only when :attr:`waiting`)."""
        if not self.ran:
            return "no checks have run on this change yet; it cannot be approved until they have"
        return (
            f"the checks have not finished ({', '.join(self.unfinished)}); "
            "it can be approved once they have"
        )

    def why_blocked(self, admin_group: str) -> str:
        """Say which checks block the approval and what can be done about it."""
        count = len(self.blocking)
        return (
            f"{count} check{'' if count == 1 else 's'} failed or could not run: "
            f"{', '.join(self.blocking)}. Fix the change (revise it) and let the checks run "
            f"again, or ask a member of {admin_group} to approve over them with a written reason"
        )


def gate_of(runs: Iterable[CheckRun]) -> Gate:
    """Sort a change's check runs into blocking, warnings and unfinished."""
    blocking: list[str] = []
    warnings: list[str] = []
    unfinished: list[str] = []
    ran = False
    for run in runs:
        ran = True
        if run.status in BLOCKING_STATUSES:
            blocking.append(run.name)
        elif run.status == "warning":
            warnings.append(run.name)
        elif run.status not in FINISHED_STATUSES:
            unfinished.append(run.name)
    return Gate(tuple(blocking), tuple(warnings), tuple(unfinished), ran)


@dataclass(frozen=True)
class Override:
    """An admin's request to approve over failing checks: why, and the checks they saw.

    ``checks`` binds the reason to what the admin read: when the checks differ by the time
    the decision is claimed (a re-run meanwhile), the override is refused, not stretched.
    """

    reason: str
    checks: tuple[str, ...]


def reason_problem(text: str) -> str | None:
    """Say what is wrong with an override reason (already trimmed), or None when it is fine.

    The answer continues "the reason ...", e.g. "the reason is too long: ...".
    """
    if len(text) < REASON_MIN_LENGTH:
        return (
            "is required: say why the failing checks may be approved over, in at least "
            f"{REASON_MIN_LENGTH} characters (this one has {len(text)})"
        )
    if len(text) > REASON_MAX_LENGTH:
        return f"is too long: at most {REASON_MAX_LENGTH:,} characters (this one has {len(text):,})"
    if (where := lone_surrogate(text)) is not None:
        return f"must be valid Unicode text ({where} is a lone surrogate, not a character)"
    # A reason may run over several lines: tab, line feed and carriage return are fine.
    if (control := control_character(text)) is not None:
        return f"must not contain control characters ({control[0]} at position {control[1]})"
    return None


def clean_reason(text: str) -> str:
    """Return a reason as it is stored: every line break a line feed, trimmed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def commit_section(override: Override, approver: str) -> str:
    """Return the merge commit's paragraph recording an override, ending in a blank line.

    The reason is data in the message body (the message reaches git on standard input,
    never on a command line). Every line of it is indented under a fixed heading, so no
    line of a reason can read as a trailer (``Approved-by:``) or a heading of its own.
    """
    quoted = "\n".join(f"    {line}".rstrip() for line in override.reason.split("\n"))
    return (
        f"Approved over failing checks: {', '.join(override.checks)}\n"
        f"Reason given by {approver}:\n{quoted}\n\n"
    )
