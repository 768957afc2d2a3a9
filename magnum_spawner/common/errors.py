"""Typed errors for the OpenStack calls the spawner makes.

Every error carries the HTTP status (None when the cloud was not reached), the
service's own explanation (``detail``) and the request id, so that an operator can
find the matching line in the service's log.

:func:`from_keystoneauth` and :func:`from_openstacksdk` turn the client libraries'
exceptions into these; :func:`spawn_error` and :func:`for_user` turn them into what
JupyterHub shows on the spawn page.
"""

import re

from jupyterhub.spawner import SpawnException
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc


class CloudError(Exception):
    """An OpenStack call failed."""

    status = None

    def __init__(self, detail, *, status=None, request_id=None, service="zun"):
        self.detail = detail
        if status is not None:
            self.status = status
        self.request_id = request_id
        self.service = service
        super().__init__(str(self))

    def __str__(self):
        where = f"{self.service} {self.status}" if self.status else self.service
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{where}: {self.detail}{rid}"


class BadRequest(CloudError):
    status = 400


class AuthenticationFailed(CloudError):
    status = 401


class Forbidden(CloudError):
    status = 403


class OverQuota(Forbidden):
    """The cloud project's quota is full (Zun 403, Cinder 413)."""


class NotFound(CloudError):
    status = 404


class NotAcceptable(CloudError):
    """406: usually a wrong ``OpenStack-API-Version`` header."""

    status = 406


class Conflict(CloudError):
    status = 409


class ServerError(CloudError):
    status = 500


class Unreachable(CloudError):
    """The service could not be reached (connection refused, timeout, no endpoint)."""


class VersionError(CloudError):
    """The server's API version range does not cover what the spawner needs."""


class CloudConfigError(CloudError):
    """The cloud configuration (clouds.yaml, ``OS_*`` or ``auth``) is missing or wrong."""

    def __init__(self, detail, **kw):
        kw.setdefault("service", "cloud config")
        super().__init__(detail, **kw)


def is_transient(error):
    """Whether the same request may well work a moment later (5xx, no answer)."""
    if isinstance(error, (VersionError, CloudConfigError)):
        return False
    return error.status is None or error.status >= 500


_BY_STATUS = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: Forbidden,
    404: NotFound,
    406: NotAcceptable,
    409: Conflict,
    413: OverQuota,
}


def error_for_status(status, detail, *, request_id=None, service="zun"):
    """Return the typed error for an HTTP status.

    A 403 whose text speaks of a quota becomes :class:`OverQuota` (Zun reports a
    full quota as 403; Cinder as 413).
    """
    if status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, CloudError)
    if cls is Forbidden and "quota" in (detail or "").lower():
        cls = OverQuota
    return cls(detail, status=status, request_id=request_id, service=service)


#: service -> (its entry in the Keystone catalog, its name in messages)
_SERVICES = {
    "zun": ("'container'", "Zun"),
    "cinder": ("'block-storage' (volumev3)", "Cinder"),
    "neutron": ("'network'", "Neutron"),
    "nova": ("'compute'", "Nova"),
    "keystone": ("'identity'", "Keystone"),
    "magnum": ("'container-infra'", "Magnum"),
}


def _first_line(error):
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


_URL_RE = re.compile(r"https?://([^/\s:'\"]+(?::\d+)?)")
_CONNECT_REASONS = (
    ("reset", "the connection was reset"),
    ("refused", "the connection was refused"),
    ("timed out", "no answer in time"),
    ("timeout", "no answer in time"),
    ("Name or service not known", "its host name does not resolve"),
    ("certificate", "its TLS certificate was refused"),
    ("SSL", "the TLS handshake failed"),
    ("aborted", "the connection was dropped"),
)


def _connect_failure(error, with_address=True):
    """`` at HOST:PORT (what went wrong)``, in words a user can read.

    keystoneauth's own text nests urllib3's and the socket's reprs, e.g.
    ``('Connection aborted.', ConnectionResetError(104, ...))``.
    """
    text = str(error)
    found = _URL_RE.search(text)
    at = f" at {found.group(1)}" if found and with_address else ""
    if isinstance(error, ks_exc.ConnectTimeout):
        return f"{at} (no answer in time)"
    for needle, reason in _CONNECT_REASONS:
        if needle.lower() in text.lower():
            return f"{at} ({reason})"
    return f"{at} (the connection failed)"


def from_keystoneauth(error, service="zun", where=None):
    """A keystoneauth exception met while calling ``service`` as a :class:`CloudError`.

    ``where`` names what could not be reached (default: the service's API).
    """
    entry, api = _SERVICES[service]
    if isinstance(error, ks_exc.Unauthorized):
        return AuthenticationFailed(
            f"Keystone refused the credentials ({_first_line(error)})", status=401,
            service="keystone",
        )
    if isinstance(error, ks_exc.EndpointNotFound):
        return Unreachable(
            f"no {entry} endpoint in the Keystone catalog for this region and "
            f"interface (is {api} installed on this cloud?)",
            service=service,
        )
    if isinstance(error, (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.SSLError)):
        where = where or ("Keystone" if service == "keystone" else f"the {api} API")
        reason = _connect_failure(error, with_address=" at " not in where)
        return Unreachable(f"cannot reach {where}{reason}", service=service)
    return CloudError(f"request failed: {error}", service=service)


def from_openstacksdk(error, service):
    """An openstacksdk (or keystoneauth) exception as a :class:`CloudError`."""
    if isinstance(error, sdk_exc.HttpException) and error.status_code:
        detail = (error.details or error.message or "").strip()
        return error_for_status(
            error.status_code, detail, request_id=error.request_id, service=service
        )
    if isinstance(error, sdk_exc.ResourceTimeout):
        return CloudError(f"timed out: {error}", service=service)
    return from_keystoneauth(error, service)


# -- what the user sees --------------------------------------------------------


class SpawnFailure(SpawnException):
    """A SpawnException whose spawn page shows ``message``, never ``log_message``.

    JupyterHub 6's progress stream reports a failed spawn with ``str(exc)``,
    which for a SpawnException is ``"500 SpawnException(reason=...): "`` plus the
    operator's ``log_message``, unless the exception has ``jupyterhub_message``.
    """

    @property
    def jupyterhub_message(self):
        return self.message

    @property
    def jupyterhub_html_message(self):
        return self.message_html or None


def spawn_error(message, *, reason, status_code=500, log_message=None):
    """A SpawnException: ``message`` for the spawn page, ``log_message`` for the log."""
    return SpawnFailure(
        message, reason=reason, status_code=status_code,
        log_message=message if log_message is None else log_message,
    )


def for_user(error, action):
    """A :class:`CloudError` met while trying to ``action`` as a plain sentence.

    The error stays on it as ``cloud_error`` (what a quota refusal names).
    """
    failure = _for_user(error, action)
    failure.cloud_error = error
    return failure


def _for_user(error, action):
    log_message = f"{action}: {error}"
    if isinstance(error, (CloudConfigError, AuthenticationFailed)):
        return spawn_error(
            "The hub cannot log in to its cloud; tell your administrator.",
            reason="cloud-config", log_message=log_message,
        )
    if isinstance(error, OverQuota):
        service = "storage" if error.service == "cinder" else "container"
        return spawn_error(
            f"The {service} quota of this hub's cloud project is full; "
            "tell your administrator.",
            reason="quota", status_code=403, log_message=log_message,
        )
    return spawn_error(
        f"Could not {action}: {error.detail}", reason="cloud", log_message=log_message,
    )
