"""Flux Kustomizations as the clusters report them, read through the official ``kubernetes`` client.

The only module that imports the ``kubernetes`` package. A read is one
``GET /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/<ns>/kustomizations/<name>``
(``CustomObjectsApi.get_namespaced_custom_object``) with a short timeout and no retries,
so a page that shows sync state never waits long for a cluster that is down.

Which cluster an environment is read from (:class:`FluxClusters`):

- credentials from ``PORTAL_KUBECONFIG`` (a kubeconfig file), or from the pod's service
  account with ``PORTAL_KUBERNETES=in-cluster``; neither: Kubernetes is not configured;
- ``PORTAL_KUBE_CONTEXTS=dev=ctx-a,prod=ctx-b`` reads each listed environment from its
  kubeconfig context (a bare ``dev`` from the default cluster: the kubeconfig's current
  context, or the portal's own cluster); an unlisted environment has no cluster. Unset,
  every environment is read from the default cluster, and the caller checks that the
  Kustomization found applies that environment's overlay (one cluster runs one
  environment: the scaffold names every environment's Kustomization alike).

One ``ApiClient`` per context, made on first use, so a kubeconfig that is missing or
wrong is reported on the page that needs it instead of stopping the portal.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

GROUP = "kustomize.toolkit.fluxcd.io"
VERSION = "v1"
PLURAL = "kustomizations"
DEFAULT_TIMEOUT_SECONDS = 3.0
DEFAULT_CLUSTER = ""  # the context name meaning: the kubeconfig's current one, or in-cluster
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_MESSAGE_LIMIT = 300

ReadyStatus = Literal["True", "False", "Unknown"]


class FluxStatusError(RuntimeError):
    """A cluster could not be read: the message says why, for the page that shows it."""


@dataclass(frozen=True)
class KustomizationStatus:
    """What a Flux Kustomization reports: its Ready condition and the revisions it saw.

    ``ready`` is None while the controller has not written a Ready condition yet;
    ``observed_at`` is that condition's ``lastTransitionTime``.
    """

    namespace: str
    name: str
    ready: ReadyStatus | None
    reason: str = ""
    message: str = ""
    last_applied_revision: str = ""
    last_attempted_revision: str = ""
    observed_at: datetime | None = None
    path: str = ""
    suspended: bool = False


class FluxStatusSource(Protocol):
    """Reads one cluster's Flux Kustomizations."""

    def kustomization(self, namespace: str, name: str) -> KustomizationStatus | None:
        """Return the Kustomization's status; None when the cluster has no such object.

        Raises :class:`FluxStatusError` when the cluster cannot be read.
        """
        ...


def _checked(namespace: str, name: str) -> None:
    if not _LABEL.fullmatch(namespace):
        raise FluxStatusError(f"namespace {namespace[:80]!r} is not a DNS-1123 label")
    if not _SUBDOMAIN.fullmatch(name):
        raise FluxStatusError(f"Kustomization name {name[:80]!r} is not a DNS-1123 subdomain")


def _text(raw: Any) -> str:
    return raw if isinstance(raw, str) else ""


def _time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:  # RFC 3339 as the API server writes it (Z suffix); fromisoformat takes Z from 3.11
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def parse_kustomization(document: Mapping[str, Any]) -> KustomizationStatus:
    """Read a Kustomization object (as the API server returns it) into its status.

    Tolerant of what a controller has not written yet (no status, no conditions): those
    read as "no Ready condition", never as an error.
    """
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    spec = document.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    status = document.get("status")
    status = status if isinstance(status, Mapping) else {}
    conditions = status.get("conditions")
    ready: Mapping[str, Any] = next(
        (
            condition
            for condition in (conditions if isinstance(conditions, list) else [])
            if isinstance(condition, Mapping) and condition.get("type") == "Ready"
        ),
        {},
    )
    value = ready.get("status")
    return KustomizationStatus(
        namespace=_text(metadata.get("namespace")),
        name=_text(metadata.get("name")),
        ready=value if value in ("True", "False", "Unknown") else None,
        reason=_text(ready.get("reason")),
        message=_text(ready.get("message"))[:_MESSAGE_LIMIT],
        last_applied_revision=_text(status.get("lastAppliedRevision")),
        last_attempted_revision=_text(status.get("lastAttemptedRevision")),
        observed_at=_time(ready.get("lastTransitionTime")),
        path=_text(spec.get("path")),
        suspended=spec.get("suspend") is True,
    )


def _refusal(exc: ApiException, where: str) -> FluxStatusError:
    status = exc.status or 0
    if status == 401:
        return FluxStatusError(f"{where} refused the portal's credentials (401 Unauthorized)")
    if status == 403:
        return FluxStatusError(
            f"{where} forbids the portal to read Kustomizations (403 Forbidden): grant get on "
            f"{PLURAL}.{GROUP}"
        )
    return FluxStatusError(f"{where} answered {status} {exc.reason or ''}".rstrip())


def _unanswered(exc: Exception, where: str, timeout: float) -> FluxStatusError:
    # With retries off urllib3 still wraps the cause in MaxRetryError: name the cause.
    cause: BaseException | None = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        cause = exc.reason
    if isinstance(cause, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        cause = cause.__context__ or cause  # the OSError: "[Errno 111] Connection refused"
    elif isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
        return FluxStatusError(f"{where} did not answer within {timeout:g} s")
    return FluxStatusError(f"{where} is unreachable: {cause}"[:_MESSAGE_LIMIT])


class KubernetesFluxStatusSource:
    """A :class:`FluxStatusSource` over the Kubernetes API of one cluster."""

    def __init__(
        self,
        make_client: Callable[[], k8s_client.ApiClient],
        *,
        label: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._make_client = make_client
        self._client: k8s_client.ApiClient | None = None
        self._lock = threading.Lock()
        self.label = label
        self.timeout = timeout

    def _api(self) -> k8s_client.CustomObjectsApi:
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._make_client()
                except (ConfigException, OSError, ValueError, TypeError) as exc:
                    # Not kept: a kubeconfig fixed on disk is read again by the next request.
                    raise FluxStatusError(f"{self.label}: {exc}"[:_MESSAGE_LIMIT]) from exc
            return k8s_client.CustomObjectsApi(self._client)

    def kustomization(self, namespace: str, name: str) -> KustomizationStatus | None:
        """Return the Kustomization ``namespace/name`` of this cluster (None: not there)."""
        _checked(namespace, name)
        api = self._api()
        try:
            document = api.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _refusal(exc, self.label) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unanswered(exc, self.label, self.timeout) from exc
        if not isinstance(document, Mapping):
            raise FluxStatusError(f"{self.label} answered something that is not an object")
        return parse_kustomization(document)

    def close(self) -> None:
        """Close the client's connection pool (the app's shutdown)."""
        with self._lock:
            if self._client is not None:
                self._client.close()  # type: ignore[no-untyped-call]
                self._client = None


def _configured(configuration: k8s_client.Configuration) -> k8s_client.Configuration:
    # One try only: urllib3's default retries a refused connection three times, and the
    # page has its own time budget.
    configuration.retries = 0
    return configuration


def kubeconfig_client(path: Path, context: str | None) -> Callable[[], k8s_client.ApiClient]:
    """Return a maker of an ``ApiClient`` for ``context`` of the kubeconfig at ``path``."""

    def make() -> k8s_client.ApiClient:
        if not path.is_file():
            raise FluxStatusError(f"kubeconfig {path} is not a file (PORTAL_KUBECONFIG)")
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path),
            context=context or None,
            client_configuration=configuration,
            persist_config=False,
        )
        return k8s_client.ApiClient(_configured(configuration))

    return make


def in_cluster_client() -> k8s_client.ApiClient:
    """Return an ``ApiClient`` with the pod's service account (``PORTAL_KUBERNETES=in-cluster``)."""
    configuration = k8s_client.Configuration()
    k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
        client_configuration=configuration
    )
    return k8s_client.ApiClient(_configured(configuration))


@dataclass
class FluxClusters:
    """Which cluster each environment's Kustomizations are read from (see the module doc).

    ``contexts``: environment -> kubeconfig context (``""``: the default cluster); empty:
    every environment reads the default cluster (``shared`` is then True).
    """

    kubeconfig: Path | None
    in_cluster: bool
    contexts: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    _sources: dict[str, KubernetesFluxStatusSource] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def shared(self) -> bool:
        """Return True when every environment is read from one default cluster."""
        return not self.contexts

    def for_environment(self, environment: str) -> FluxStatusSource | None:
        """Return the source of ``environment``'s cluster; None when none is configured."""
        if self.contexts and environment not in self.contexts:
            return None
        context = self.contexts.get(environment, DEFAULT_CLUSTER)
        with self._lock:
            found = self._sources.get(context)
            if found is None:
                found = self._source(context)
                self._sources[context] = found
            return found

    def _source(self, context: str) -> KubernetesFluxStatusSource:
        if self.kubeconfig is not None:
            label = f"context {context}" if context else "the kubeconfig's current context"
            make = kubeconfig_client(self.kubeconfig, context)
            return KubernetesFluxStatusSource(make, label=label, timeout=self.timeout)
        make = in_cluster_client
        if context:  # settings refuse this; a page still says why instead of failing

            def make() -> k8s_client.ApiClient:
                raise FluxStatusError(f"context {context} needs PORTAL_KUBECONFIG")

        return KubernetesFluxStatusSource(make, label="the portal's cluster", timeout=self.timeout)

    def close(self) -> None:
        """Close every client made so far."""
        with self._lock:
            for source in self._sources.values():
                source.close()
            self._sources.clear()


@dataclass
class FakeFluxStatusSource:
    """A :class:`FluxStatusSource` for unit tests: answers from a dict, records each read.

    A value that is an exception is raised (as a cluster that cannot be read would).
    """

    objects: dict[tuple[str, str], KustomizationStatus | Exception] = field(default_factory=dict)
    reads: list[tuple[str, str]] = field(default_factory=list)

    def kustomization(self, namespace: str, name: str) -> KustomizationStatus | None:
        """Return the stored status (None when there is none), or raise the stored error."""
        self.reads.append((namespace, name))
        found = self.objects.get((namespace, name))
        if isinstance(found, Exception):
            raise found
        return found
