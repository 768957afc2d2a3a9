"""Typed errors for the OpenStack calls the spawner makes.

Every error carries the HTTP status (None when the cloud was not reached), the
service's own explanation (``detail``) and the request id, so that an operator can
find the matching line in the service's log.
"""


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


#: How the services reached through openstacksdk are named in messages:
#: service -> (API name, catalog entry).
_SDK_SERVICES = {
    "cinder": ("Cinder", "'block-storage' (volumev3)"),
    "neutron": ("Neutron", "'network'"),
}


def sdk_error(error, service):
    """An openstacksdk / keystoneauth exception as a magnum_spawner error."""
    from keystoneauth1 import exceptions as ks_exc
    from openstack import exceptions as sdk_exc

    api, entry = _SDK_SERVICES[service]
    if isinstance(error, sdk_exc.HttpException) and error.status_code:
        detail = (error.details or error.message or "").strip()
        return error_for_status(
            error.status_code, detail, request_id=error.request_id, service=service
        )
    if isinstance(error, ks_exc.Unauthorized):
        return AuthenticationFailed(
            f"Keystone refused the credentials ({error})", status=401, service="keystone"
        )
    if isinstance(error, ks_exc.EndpointNotFound):
        return Unreachable(
            f"no {entry} endpoint in the Keystone catalog for this region and "
            f"interface (is {api} installed on this cloud?)",
            service=service,
        )
    if isinstance(error, (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.SSLError)):
        return Unreachable(f"cannot reach the {api} API: {error}", service=service)
    if isinstance(error, sdk_exc.ResourceTimeout):
        return CloudError(f"timed out: {error}", service=service)
    return CloudError(f"request failed: {error}", service=service)
