"""Open-Meteo Air Quality API client: the request, retries with backoff, errors and parsing.

The API answers ``{"error": true, "reason": "..."}`` on bad requests (HTTP 400) and when a
rate limit is hit (HTTP 429); that reason is kept and shown to people as it is. Values may
be ``null`` (beyond the CAMS forecast horizon, or a variable the domain lacks) and a
requested variable may be missing from ``hourly`` altogether: both become "no value", never
an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from opentelemetry import propagate, trace

from .settings import Settings

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

PATH = "/v1/air-quality"
PAST_DAYS = 9
FORECAST_DAYS = 2
RETRY_STATUSES = frozenset({429, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]


class OpenMeteoError(RuntimeError):
    """The API could not give data; ``reason`` is what a person should read.

    ``kind`` is one of ``rate_limited``, ``unavailable``, ``rejected``, ``timeout``,
    ``network`` or ``invalid`` (also the label of the fetch-error metric).
    """

    def __init__(self, reason: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status


@dataclasses.dataclass(frozen=True)
class AirQualityData:
    """Hourly concentrations in µg/m³, at the city's local wall-clock times."""

    times: tuple[datetime, ...]
    values: Mapping[str, tuple[float | None, ...]]
    units: Mapping[str, str]
    utc_offset_seconds: int
    timezone: str
    latitude: float
    longitude: float
    missing: tuple[str, ...] = ()

    def series(self, pollutant: str) -> tuple[float | None, ...]:
        """Return a pollutant's hourly values; all ``None`` when the response lacks it."""
        return self.values.get(pollutant, (None,) * len(self.times))


def request_params(settings: Settings) -> dict[str, str]:
    """Return the query string: 9 past days and 2 forecast days, hourly, in the city's zone."""
    return {
        "latitude": f"{settings.latitude:.4f}",
        "longitude": f"{settings.longitude:.4f}",
        "hourly": ",".join(settings.pollutants),
        "past_days": str(PAST_DAYS),
        "forecast_days": str(FORECAST_DAYS),
        "timezone": settings.timezone,
    }


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("reason"), str):
        return str(body["reason"])
    return f"HTTP {response.status_code} from Open-Meteo"


def _kind(status: int) -> str:
    if status == 429:
        return "rate_limited"
    return "unavailable" if status >= 500 else "rejected"


def _retry_delay(response: httpx.Response | None, attempt: int, settings: Settings) -> float:
    delay = settings.retry_backoff_seconds * 2**attempt
    header = response.headers.get("Retry-After") if response is not None else None
    if header is not None:
        # An HTTP date instead of seconds keeps the exponential backoff.
        with contextlib.suppress(ValueError):
            delay = max(delay, float(header))
    return min(delay, settings.retry_after_cap_seconds)


async def fetch_air_quality(
    client: httpx.AsyncClient, settings: Settings, *, sleep: Sleep = asyncio.sleep
) -> AirQualityData:
    """Fetch and parse the city's data, retrying 429, 502-504 and network errors with backoff."""
    url = settings.open_meteo_url + PATH
    params = request_params(settings)
    with tracer.start_as_current_span("open-meteo air-quality", kind=trace.SpanKind.CLIENT) as span:
        span.set_attribute("http.request.method", "GET")
        span.set_attribute("url.full", url)
        last: OpenMeteoError | None = None
        for attempt in range(settings.max_attempts):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            response: httpx.Response | None = None
            try:
                response = await client.get(
                    url, params=params, headers=headers, timeout=settings.http_timeout_seconds
                )
            except httpx.TimeoutException:
                last = OpenMeteoError("Open-Meteo did not answer in time", kind="timeout")
            except httpx.TransportError as error:
                last = OpenMeteoError(f"cannot reach Open-Meteo: {error}", kind="network")
            else:
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code == 200:
                    data = parse_response(_json(response), settings.pollutants)
                    span.set_attribute("air_quality.hours", len(data.times))
                    return data
                last = OpenMeteoError(
                    _reason(response), kind=_kind(response.status_code), status=response.status_code
                )
                if response.status_code not in RETRY_STATUSES:
                    break
            if attempt + 1 < settings.max_attempts:
                delay = _retry_delay(response, attempt, settings)
                logger.warning(
                    "Open-Meteo attempt %d failed (%s), retrying in %.1fs",
                    attempt + 1,
                    last.reason,
                    delay,
                    extra={"kind": last.kind, "status": last.status},
                )
                await sleep(delay)
        assert last is not None
        span.set_status(trace.Status(trace.StatusCode.ERROR, last.reason))
        raise last


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise OpenMeteoError("Open-Meteo sent something that is not JSON", kind="invalid") from None


def _time(raw: object, offset: int) -> datetime:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        # timeformat=unixtime: seconds since the epoch (UTC); shift to local wall time.
        return datetime.fromtimestamp(raw + offset, UTC).replace(tzinfo=None)
    if isinstance(raw, str):
        return datetime.fromisoformat(raw).replace(tzinfo=None)
    raise ValueError(f"unexpected time {raw!r}")


def _value(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    value = float(raw)
    return value if math.isfinite(value) and value >= 0 else None


def parse_response(payload: Any, pollutants: Sequence[str]) -> AirQualityData:
    """Turn the API's JSON into :class:`AirQualityData`; an error body raises its reason."""
    if isinstance(payload, dict) and payload.get("error") is True:
        reason = payload.get("reason")
        text = reason if isinstance(reason, str) and reason else "Open-Meteo reported an error"
        raise OpenMeteoError(text, kind="rejected")
    if not isinstance(payload, dict) or not isinstance(payload.get("hourly"), dict):
        raise OpenMeteoError("Open-Meteo's answer has no hourly data", kind="invalid")
    hourly: dict[str, Any] = payload["hourly"]
    offset = payload.get("utc_offset_seconds", 0)
    offset = int(offset) if isinstance(offset, int | float) else 0
    raw_times = hourly.get("time")
    if not isinstance(raw_times, list):
        raise OpenMeteoError("Open-Meteo's answer has no hourly times", kind="invalid")
    try:
        times = tuple(_time(raw, offset) for raw in raw_times)
    except ValueError as error:
        raise OpenMeteoError(
            f"Open-Meteo's answer has a bad time: {error}", kind="invalid"
        ) from None
    values: dict[str, tuple[float | None, ...]] = {}
    missing: list[str] = []
    for pollutant in pollutants:
        raw_values = hourly.get(pollutant)
        if not isinstance(raw_values, list):
            missing.append(pollutant)
            continue
        if len(raw_values) != len(times):
            raise OpenMeteoError(
                f"Open-Meteo's {pollutant} has {len(raw_values)} values for {len(times)} hours",
                kind="invalid",
            )
        values[pollutant] = tuple(_value(raw) for raw in raw_values)
    units = payload.get("hourly_units")
    return AirQualityData(
        times=times,
        values=values,
        units={str(k): str(v) for k, v in units.items()} if isinstance(units, dict) else {},
        utc_offset_seconds=offset,
        timezone=str(payload.get("timezone", "")),
        latitude=float(payload.get("latitude", 0.0)),
        longitude=float(payload.get("longitude", 0.0)),
        missing=tuple(missing),
    )
