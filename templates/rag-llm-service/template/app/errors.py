"""Client errors: one JSON shape naming the field at fault, for every 4xx the API answers.

``{"errors": [{"field": "question", "message": "..."}]}``: the field is written as the
caller wrote it (``files[1]``, ``prompt_label``), whether pydantic found the problem or a
check of this service did. The same shape answers a failed LLM call (502, field ``llm``).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class ApiError(Exception):
    """A request the service cannot serve, and the field that makes it so.

    Mostly 422; ``llm`` is the field when the LLM endpoint fails (502).
    """

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


def field_name(location: Sequence[str | int]) -> str:
    """Write a pydantic location as a caller would: ``question``, ``files[1]``."""
    outer = ("body", "query")
    parts = list(location[1:] if location and location[0] in outer else location)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def error_body(field: str, message: str) -> dict[str, list[dict[str, str]]]:
    """Return the JSON body of a client error."""
    return {"errors": [{"field": field, "message": message}]}


async def input_error(request: Request, error: ApiError) -> JSONResponse:
    """Answer an :class:`ApiError` with its status."""
    return JSONResponse(error_body(error.field, error.message), status_code=error.status)


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """Answer pydantic's findings (422) in the same shape, every field named."""
    errors = []
    for item in error.errors():
        location, message = tuple(item.get("loc", ())), str(item.get("msg", "invalid"))
        if item.get("type") == "json_invalid":  # its location is a character, not a field
            location, message = ("body",), f"{message} at character {location[-1]}"
        errors.append({"field": field_name(location), "message": message})
    return JSONResponse({"errors": errors}, status_code=422)


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(ApiError, input_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
