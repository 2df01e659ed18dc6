"""The navigation areas that later issues fill in (the home page is :mod:`portal.home`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.ui.render import page

router = APIRouter(include_in_schema=False)

_PLANNED = {
    "traces": ("Traces", "Trace search and waterfalls per service."),
}


def _planned_area(key: str) -> None:
    heading, summary = _PLANNED[key]

    def view(request: Request) -> HTMLResponse:
        return page(
            request, "ui/not_yet.html", {"active": key, "heading": heading, "summary": summary}
        )

    view.__name__ = f"{key}_page"
    router.add_api_route(f"/{key}", view, methods=["GET"], response_class=HTMLResponse)


for _key in _PLANNED:
    _planned_area(_key)
