"""One server spoken to in JSON over HTTP: what the MLflow and Tempo clients share.

:class:`JsonHttpServer` holds an httpx client for one server (proxy settings of the
environment ignored: nothing stands between the portal and it), the server's URL as the
pages and messages show it (never with the credentials a URL may carry), and says in a
few words why the server could not be reached ("connection refused", "no answer within
5 s") for the unavailable errors the clients raise.
"""

from __future__ import annotations

import re
from typing import Self

import httpx

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def public_url(url: str) -> str:
    """Return ``url`` without the user and password it may carry, and no trailing slash."""
    return re.sub(r"//[^/@]*@", "//", url.rstrip("/"))


class JsonHttpServer:
    """An httpx client of the server at ``url`` (requests under ``base_path``)."""

    def __init__(
        self,
        url: str,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        base_path: str = "",
    ) -> None:
        """Talk to ``url``; each request gives up after ``timeout`` seconds."""
        self._url = public_url(url)
        self.timeout = timeout
        self._client = httpx.Client(
            base_url=url.rstrip("/") + base_path,
            timeout=timeout,
            transport=transport,
            trust_env=False,
            headers={"Accept": "application/json"},
        )

    @property
    def url(self) -> str:
        """The server's URL without credentials."""
        return self._url

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def __enter__(self) -> Self:
        """Use as a context manager: closed on leaving."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the connection pool."""
        self.close()

    def unreachable_reason(self, error: Exception) -> str:
        """Say why a request failed to reach the server, in a few words."""
        if isinstance(error, httpx.TimeoutException):
            return f"no answer within {self.timeout:g} s"
        errno = _ERRNO.search(str(error))
        return errno.group(1).strip().lower() if errno else str(error)[:200] or repr(error)
