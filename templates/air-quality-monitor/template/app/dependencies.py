"""What the routes share: the started monitor, and a submitted form or JSON body."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from .monitor import Monitor


def started_monitor(request: Request) -> Monitor:
    """Return the monitor of the running app (a FastAPI dependency of every route)."""
    monitor = getattr(request.app.state, "monitor", None)
    if not isinstance(monitor, Monitor):
        raise RuntimeError("the service is not started")
    return monitor


MonitorDep = Annotated[Monitor, Depends(started_monitor)]


def unavailable(monitor: Monitor) -> JSONResponse:
    """Answer 503 with the reason no data can be served (the API's words when it gave one)."""
    reason = monitor.last_error.reason if monitor.last_error else "no data fetched yet"
    return JSONResponse({"error": True, "reason": reason}, status_code=503)


async def submitted(request: Request) -> dict[str, object]:
    """Read a form (urlencoded) or JSON object body without a multipart parser."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}
