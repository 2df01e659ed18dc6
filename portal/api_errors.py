"""Error bodies of the JSON API: their models, what each operation declares, the 422 handler.

Every refusal is ``{"detail": "<sentence>"}`` (:class:`Problem`), except invalid fields:
422 is always ``{"detail": "<sentence>", "errors": {"<field>": "<message>"}}``
(:class:`FieldErrors`), whether FastAPI refused the request's shape (fields named by where
they are: ``body.answers``, ``query.limit``) or a domain check refused a value (fields named
as the form names them: ``name``, ``url``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

ResponsesDoc = dict[int | str, dict[str, Any]]


class Problem(BaseModel):
    """Why a request was refused, in one sentence."""

    detail: str


class FieldErrors(BaseModel):
    """Why a request was refused, one message per field."""

    detail: str
    errors: dict[str, str]


DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: an unreadable body or form, or an identity header sent twice",
    401: "Not signed in",
    403: "Not allowed, or an unsafe request without the session's CSRF token (forms)",
    404: "Not found",
    409: "The current state does not allow it",
    413: "The request body is larger than PORTAL_MAX_BODY_BYTES",
    422: "Invalid fields, one message per field",
    503: "A system the portal needs (database, GitOps remote) did not answer",
}


def error_responses(*codes: int, described: dict[int, str] | None = None) -> ResponsesDoc:
    """Return a ``responses=`` declaration of ``codes`` with the models they answer with."""
    described = described or {}
    declared: ResponsesDoc = {}
    for code in sorted({*codes, *described}):
        model = FieldErrors if code == 422 else Problem
        declared[code] = {"model": model, "description": described.get(code, DESCRIPTIONS[code])}
    return declared


# What any unsafe operation can answer before its route runs: a form without the CSRF token
# (JSON bodies are exempt) and a body over the limit.
UNSAFE = (403, 413)


@dataclass
class RefusedError(Exception):
    """A domain check's refusal: 403, 404 or 409 (``message``) or 422 (one message per field)."""

    message: str
    status: int = 422
    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def refused_answer(exc: RefusedError) -> JSONResponse:
    """Return the 422 :class:`FieldErrors` of ``exc``; raise other statuses (a :class:`Problem`)."""
    if exc.status != 422:
        raise HTTPException(exc.status, exc.message) from exc
    body = FieldErrors(detail=exc.message, errors=exc.errors)
    return JSONResponse(body.model_dump(), status_code=422)


def field_errors(exc: RequestValidationError) -> dict[str, str]:
    """Return FastAPI's validation errors as one message per dotted field location."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        message = str(error["msg"])
        if error.get("type") == "json_invalid":
            # FastAPI puts the character offset where a field name would go.
            where = loc[1] if len(loc) > 1 else "?"
            reason = (error.get("ctx") or {}).get("error", "")
            loc, message = loc[:1], f"invalid JSON at character {where}: {reason}".rstrip(": ")
        field = ".".join(loc) or "request"
        errors[field] = f"{errors[field]}; {message}" if field in errors else message
    return errors


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """Answer a request FastAPI refused (wrong shape or type) with :class:`FieldErrors`."""
    body = FieldErrors(detail="the request is invalid", errors=field_errors(exc))
    return JSONResponse(body.model_dump(), status_code=422)
