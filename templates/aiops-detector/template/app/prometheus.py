"""Reading history from Prometheus: ``/api/v1/query_range`` with an explicit start, end and step.

The client is ``prometheus-api-client`` (0.7 made pandas and matplotlib optional extras, so it
brings only requests and dateparser). Its errors carry Prometheus' answer as text; this
module gives back Prometheus' own message (``parse error: ...``) so the caller can name the
query at fault. Non-finite samples (``NaN`` from a division by zero, ``+Inf``) are gaps.
"""

from __future__ import annotations

import ast
import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from .series import Series, make_series

_STATUS = re.compile(
    r"^HTTP Status Code (?P<status>\d{3}) \((?P<body>b(?P<q>['\"]).*(?P=q))\)$", re.S
)
RETRIED_STATUSES = (502, 503, 504)  # Prometheus restarting or overloaded; 4xx never changes


class PrometheusQueryError(ValueError):
    """Prometheus refused the query (bad PromQL, an execution error): its message, verbatim."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class PrometheusUnavailableError(RuntimeError):
    """Prometheus could not be reached or failed (after retries)."""


class TooManySeriesError(ValueError):
    """A query returned more series than the detector takes."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"returned {count} series, at most {limit} are taken per query: aggregate it "
            "(for example sum by (job) (...)) or select fewer series"
        )
        self.count = count


class RangeSource(Protocol):
    """Where history comes from (Prometheus; the tests pass a stand-in server's URL)."""

    def query_range(
        self, query: str, start: datetime, end: datetime, step_seconds: float, max_series: int
    ) -> list[Series]:
        """Return the series of ``query`` over ``[start, end]`` at ``step_seconds``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def prometheus_message(error: PrometheusApiClientException) -> tuple[int, str]:
    """Return the status and Prometheus' own error text from the client's exception."""
    text = str(error)
    found = _STATUS.match(text)
    if found is None:
        return 0, text
    status = int(found["status"])
    try:
        body = ast.literal_eval(found["body"])  # the bytes literal the client formats
        answer = json.loads(body)
    except (ValueError, SyntaxError):
        return status, text
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return status, answer["error"]
    return status, text


def _step_text(step_seconds: float) -> str:
    return f"{step_seconds:g}"  # Prometheus takes seconds as a float


def _series(result: Any, max_series: int) -> list[Series]:
    if not isinstance(result, list):
        raise PrometheusUnavailableError("Prometheus answered something that is not a matrix")
    if len(result) > max_series:
        raise TooManySeriesError(len(result), max_series)
    series = []
    for item in result:
        try:
            labels = {str(k): str(v) for k, v in item["metric"].items()}
            times = [float(pair[0]) for pair in item["values"]]
            values = [float(pair[1]) for pair in item["values"]]  # "NaN", "+Inf" parse
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            raise PrometheusUnavailableError(
                f"Prometheus answered a matrix this client cannot read: {error}"
            ) from error
        series.append(make_series(labels, times, values))
    return series


class PrometheusRangeSource:
    """``/api/v1/query_range`` of one Prometheus, with retries on 502/503/504."""

    def __init__(
        self, url: str, *, timeout_seconds: float, attempts: int, backoff_seconds: float
    ) -> None:
        retry = Retry(
            total=max(0, attempts - 1),
            backoff_factor=backoff_seconds,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,  # the last answer is given back, with Prometheus' words
        )
        self.url = url
        self._client = PrometheusConnect(
            url=url, retry=retry, timeout=max(1, math.ceil(timeout_seconds))
        )

    def query_range(
        self, query: str, start: datetime, end: datetime, step_seconds: float, max_series: int
    ) -> list[Series]:
        """Return the series of ``query`` over ``[start, end]`` at ``step_seconds``."""
        if not start < end:
            raise ValueError("start must be before end")  # never an open range
        try:
            result = self._client.custom_query_range(
                query,
                start_time=start.astimezone(UTC),
                end_time=end.astimezone(UTC),
                step=_step_text(step_seconds),
            )
        except PrometheusApiClientException as error:
            status, message = prometheus_message(error)
            if status in (400, 422):  # bad_data, execution: the query's fault
                raise PrometheusQueryError(status, message) from error
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} answered {status or 'an error'}: {message}"
            ) from error
        except requests.RequestException as error:
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} is unreachable: {type(error).__name__}"
            ) from error
        except ValueError as error:  # a body that is not JSON
            raise PrometheusUnavailableError(
                f"Prometheus at {self.url} answered something that is not JSON"
            ) from error
        return _series(result, max_series)

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close()
