"""Pure builders of Zun and Cinder request bodies and readers of their answers.

No I/O here: tests assert on these bodies directly.
"""

import base64
import fnmatch
import re

from ..common.catalog import memory_mib
from ..common.errors import VersionError
from ..common.names import (
    LABEL_HUB,
    LABEL_MANAGED_BY,
    LABEL_PREFIX,
    LABEL_SERVER,
    LABEL_USER,
    LABEL_USER_ID,
    MANAGED_BY,
)

#: Environment variables whose values are secrets, whatever set them: JupyterHub's
#: API token (``JUPYTERHUB_API_TOKEN``, ``JPY_API_TOKEN``) and anything named alike.
SECRET_NAME_PATTERNS = ("*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*",
                        "*CREDENTIAL*", "*_KEY", "*PRIVATE*")


def is_secret_name(name, patterns=SECRET_NAME_PATTERNS):
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, p) for p in patterns)


#: Zun status -> "still running" (poll() returns None).  Rebuilding: an
#: operator's ``openstack appcontainer rebuild``, the container runs again after.
RUNNING_STATES = frozenset({"Running", "Creating", "Created", "Restarting", "Paused",
                            "Rebuilding"})
#: Zun status -> stopped (poll() returns an exit status).
STOPPED_STATES = frozenset({"Stopped", "Error", "Dead", "Deleted"})
#: Every status Zun 18 has (``zun.common.consts.CONTAINER_STATUSES``).  Unknown
#: (Docker gave no state Zun knows; never a lost host on Zun 18) is the
#: spawner's to judge; Deleting ends in a 404.
#: A status not here (a later Zun's) counts as running: never as stopped.
ZUN_STATUSES = RUNNING_STATES | STOPPED_STATES | {"Unknown", "Deleting"}

_EXITED_RE = re.compile(r"Exited\((-?\d+)\)")


def restart_policy(text):
    """``"on-failure:3"`` -> ``{"Name": "on-failure", "MaximumRetryCount": "3"}``."""
    name, _, count = (text or "no").partition(":")
    if name not in {"no", "on-failure", "always", "unless-stopped"}:
        raise ValueError(
            f"restart_policy {text!r}: use no, on-failure[:N], always or unless-stopped"
        )
    policy = {"Name": name}
    if count:
        if name != "on-failure" or not count.isdigit():
            raise ValueError(f"restart_policy {text!r}: only on-failure takes a count")
        policy["MaximumRetryCount"] = count
    return policy


def _carries(have, wanted):
    have = have or {}
    return all(have.get(k) == v for k, v in wanted.items())


def is_ours(container, labels):
    """Whether ``container`` carries every one of ``labels``."""
    return _carries(container.get("labels"), labels)


def build_container(
    *,
    name,
    choice,
    command,
    environment,
    labels,
    network=None,
    security_groups=None,
    exposed_ports=None,
    availability_zone=None,
    hints=None,
    restart="no",
    mounts=None,
    workdir=None,
):
    """The JSON body of ``POST /v1/containers`` (microversion 1.28 or later).

    ``choice`` is the user's :class:`~magnum_spawner.common.choice.Choice`: the
    image, the sizes and the labels that record it.
    """
    body = {
        "name": name,
        "image": choice.image,
        "command": list(command),
        "environment": {k: str(v) for k, v in environment.items()},
        "labels": {**labels, **choice.labels},
        "restart_policy": restart_policy(restart),
    }
    optional = {
        "memory": None if choice.mem_limit is None else str(memory_mib(choice.mem_limit)),
        "cpu": None if choice.cpu_limit is None else float(choice.cpu_limit),
        "cpu_policy": choice.cpu_policy or None,
        "disk": int(choice.disk) if choice.disk else None,
        "nets": [{"network": network}] if network else None,
        "security_groups": list(security_groups) if security_groups else None,
        "exposed_ports": dict(exposed_ports) if exposed_ports else None,
        "availability_zone": availability_zone or None,
        "hints": dict(hints) if hints else None,
        "mounts": [dict(m) for m in mounts] if mounts else None,
        "workdir": workdir or None,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


#: Where injected secret files appear inside the container (one file per variable).
SECRETS_DIR = "/run/jupyterhub-secrets"

_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Reads every injected file into the variable it is named after, then runs the
#: server.  ``$(cat f)`` drops trailing newlines; tokens have none.
LAUNCHER = (
    'for f in "$0"/*; do [ -f "$f" ] && export "${f##*/}=$(cat "$f")"; done; '
    'exec "$@"'
)


#: JupyterHub's own token variables: secret whatever ``secret_environment_names``
#: says (an operator's list replaces the default patterns, not these).
HUB_TOKEN_NAMES = frozenset({"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"})


def split_secrets(environment, patterns=SECRET_NAME_PATTERNS, tokens=()):
    """``(public, secret)``: the environment split by :func:`is_secret_name`.

    JupyterHub's token variables, and any variable whose value is one of
    ``tokens`` (the server's API token), are secret whatever ``patterns`` say.
    """
    tokens = {t for t in tokens if t}
    public, secret = {}, {}
    for key, value in environment.items():
        value = str(value)
        hidden = (key.upper() in HUB_TOKEN_NAMES or value in tokens
                  or is_secret_name(key, patterns))
        (secret if hidden else public)[key] = value
    return public, secret


def inject_secrets(command, secret_env, secrets_dir=SECRETS_DIR):
    """Zun ``mounts`` that inject ``secret_env`` as files, and the command that
    reads them into the server's environment.

    Zun (1.23+) writes each bind mount's base64 ``source`` to a file on the compute
    host and bind-mounts it at ``destination``; the container's view never shows
    it, unlike ``environment``.  Without secrets the command is unchanged.
    """
    if not secret_env:
        return list(command), []
    mounts = []
    for key, value in sorted(secret_env.items()):
        if not _ENV_NAME_RE.fullmatch(key):
            raise ValueError(
                f"environment variable {key!r} looks secret but is not a valid "
                "variable name, so it cannot be injected as a file"
            )
        mounts.append({
            "type": "bind",
            "source": base64.b64encode(str(value).encode()).decode(),
            "destination": f"{secrets_dir.rstrip('/')}/{key}",
        })
    return ["/bin/sh", "-c", LAUNCHER, secrets_dir, *command], mounts


def secret_values(body):
    """Every secret a create body carries, in each form a reply could quote it.

    The files injected with ``bind`` mounts hold secrets (base64 in ``source``);
    an environment variable whose name looks secret is one too.
    """
    found = set()
    for mount in body.get("mounts") or []:
        if mount.get("type") == "bind" and mount.get("source"):
            found.add(mount["source"])
            try:
                found.add(base64.b64decode(mount["source"]).decode())
            except ValueError:
                pass
    for key, value in (body.get("environment") or {}).items():
        if is_secret_name(key):
            found.add(str(value))
    return {s for s in found if s}


def redact(text, secrets):
    """``text`` with each of ``secrets`` replaced by ``<redacted>``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


def address_entry(container, network=None):
    """The entry of Zun's ``addresses`` to reach the container at (None if none).

    ``network`` (a Neutron network uuid) picks one network when the container has
    several; otherwise the first IPv4 address found wins, then any address.  An
    entry carries ``addr`` and (on a real Neutron) the ``port`` it is on.
    """
    addresses = container.get("addresses") or {}
    nets = [network] if network and network in addresses else list(addresses)
    entries = [e for net in nets for e in addresses.get(net) or [] if e.get("addr")]
    ipv4 = [e for e in entries if e.get("version", 4) == 4]
    return (ipv4 or entries or [None])[0]


def container_address(container, network=None):
    """The address to reach the container at (see :func:`address_entry`)."""
    return (address_entry(container, network) or {}).get("addr")


def exit_status(container):
    """poll()'s answer for a container: None while running, else an int.

    Stopped containers report Docker's ``Exited(N)`` in ``status_detail``; Error
    and Dead are 1; Deleted and Deleting are 0.  A status Zun 18 does not have
    is None: an unmapped status must never stop a server.
    """
    status = container.get("status")
    if status == "Stopped":
        match = _EXITED_RE.search(container.get("status_detail") or "")
        return int(match.group(1)) if match else 0
    if status in ("Error", "Dead"):
        return 1
    if status in ("Deleted", "Deleting"):
        return 0
    return None


def describe_failure(container):
    """A sentence for the spawn page about why a container did not run."""
    status = container.get("status")
    reason = (container.get("status_reason") or "").strip()
    detail = (container.get("status_detail") or "").strip()
    text = f"container {container.get('name') or container.get('uuid')} is {status}"
    if detail:
        text += f" ({detail})"
    if reason:
        text += f": {reason}"
    return text


# -- Cinder home volumes ------------------------------------------------------

#: Statuses a volume passes through on its own: wait for them to end.
#: (``in-use`` too unless the volume is multiattach: the previous container may
#: still be letting go of it.)
WAIT_STATES = frozenset({
    "creating", "reserved", "attaching", "in-use", "detaching", "extending",
    "downloading", "uploading", "retyping", "backing-up", "restoring-backup",
    "maintenance", "managing", "awaiting-transfer",
})
ATTACHED_STATES = frozenset({"reserved", "attaching", "in-use", "detaching"})


#: Metadata of a home volume this hub made: "yes" until it is first handed to
#: a container, then "no".  "yes" is positive evidence that it holds no file;
#: a volume without the key (older ones) may hold files.
UNUSED_KEY = LABEL_PREFIX + "unused"


def never_mounted(volume):
    return (volume.get("metadata") or {}).get(UNUSED_KEY) == "yes"


def identity_metadata(hub_id, username, servername, per_server_volume, user_id=None):
    """The metadata that identifies a home volume made by this hub.

    The same keys as the containers' labels; only ``managed-by`` says that this
    software made the volume, and ``user-id`` whose it is (a rename keeps it).
    """
    meta = {LABEL_HUB: hub_id, LABEL_USER: username, LABEL_MANAGED_BY: MANAGED_BY}
    if user_id is not None:
        meta[LABEL_USER_ID] = str(user_id)
    if per_server_volume:
        meta[LABEL_SERVER] = servername or ""
    return meta


def volume_request(*, name, size, metadata, description=None, volume_type=None,
                   availability_zone=None):
    """The attributes of a Cinder volume create (only what is set is sent)."""
    body = {"name": name, "size": int(size), "metadata": dict(metadata)}
    if description:
        body["description"] = description
    if volume_type:
        body["volume_type"] = volume_type
    if availability_zone:
        body["availability_zone"] = availability_zone
    return body


def mounts_for(volume_id, mount_path):
    """Zun's ``mounts`` entry for a Cinder volume (as Zun 1.40 accepted it)."""
    return [{"source": volume_id, "destination": mount_path}]


def conflicts(volume, identity):
    """The identity keys the volume carries with a different value."""
    meta = volume.get("metadata") or {}
    return {k: meta[k] for k in identity if k in meta and meta[k] != identity[k]}


def owned_by(volume, servername):
    """Whether deleting server ``servername`` may delete this home volume.

    A per-server volume (its metadata names a server) belongs to that server.
    A volume without a server key is the user's, shared by all their servers:
    it goes only with the user, that is with the default server (JupyterHub
    refuses to delete a default server on its own; it deletes it, and calls its
    delete_forever, only when the user is deleted).
    """
    meta = volume.get("metadata") or {}
    if LABEL_SERVER in meta:
        return meta[LABEL_SERVER] == (servername or "")
    return not servername


def matches_server(volume, servername, per_server_volume):
    """Whether a volume found by hub+user metadata belongs to this server.

    A per-user volume has no server key.  With a per-server template the default
    server also takes the user's old per-user volume, so that switching the
    template keeps the default server's files.
    """
    meta = volume.get("metadata") or {}
    if not per_server_volume:
        return LABEL_SERVER not in meta
    return owned_by(volume, servername)


def volume_made_here(volume, hub_id):
    """Whether this hub made the volume (only those may ever be deleted)."""
    made_here = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_HUB: hub_id}
    return _carries(volume.get("metadata"), made_here)


def attached_to(volume):
    """The ids of the containers (Cinder ``server_id``) the volume is attached to."""
    return [a.get("server_id") for a in volume.get("attachments") or [] if a.get("server_id")]


def describe(volume):
    name = volume.get("name")
    return f"{name} ({volume['id']})" if name else volume["id"]


# -- Neutron floating IPs -----------------------------------------------------

#: Neutron's limit on a description.
MAX_DESCRIPTION = 255


#: `` ip=`` and the token of one association (:func:`description`)
_ATTEMPT_ROOM = 4 + 16


def description(hub_id, container_name, attempt=None):
    """The description of a floating IP this hub makes for a container.

    Without ``attempt``: the *mark* every such IP of the container carries.
    With it: one association's own description (the mark, then ``ip=<attempt>``),
    so that a late release of one start never touches another start's IP.
    """
    mark = f"magnum-spawner hub={hub_id} container={container_name}"
    mark = mark[:MAX_DESCRIPTION - _ATTEMPT_ROOM]
    return f"{mark} ip={attempt}" if attempt else mark


def made_for(ip_description, mark):
    """Whether a floating IP's description says the hub made it under ``mark``."""
    text = ip_description or ""
    return text == mark or text.startswith(mark + " ip=")


def container_port(container, network=None):
    """The Neutron port of the address the hub would use (:func:`address_entry`)."""
    return (address_entry(container, network) or {}).get("port")


def exposed_ports_body(ports):
    """Zun's ``exposed_ports`` (microversion 1.24+): ``{"8888/tcp": {}}``.

    Zun 18's ``build_exposed_ports`` takes keys ``"<port>"`` or
    ``"<port>/<tcp|udp>"`` with any value; its Docker driver then makes a
    security group for the container that lets those ports in from anywhere.
    """
    body = {}
    for port in ports:
        text = str(port).strip()
        number, _, proto = text.partition("/")
        proto = proto or "tcp"
        if not number.isdigit() or not 1 <= int(number) <= 65535 or proto not in ("tcp", "udp"):
            raise ValueError(
                f"exposed port {port!r}: use a port number, optionally with /tcp or /udp"
            )
        body[f"{int(number)}/{proto}"] = {}
    return body


# -- Zun's answers: versions, errors, the poller's records ------------------


def parse_version(text):
    """``"1.40"`` -> ``(1, 40)``."""
    major, minor = str(text).strip().split(".")
    return int(major), int(minor)


def format_version(version):
    return f"{version[0]}.{version[1]}"


def negotiate_version(wanted, required, server_min, server_max):
    """The microversion to use, or raise :class:`VersionError`.

    ``wanted`` is used when the server supports it; otherwise the server's maximum
    when that still covers ``required``; a server whose range does not reach
    ``required`` is refused with a message naming both numbers.
    """
    wanted, required = parse_version(wanted), parse_version(required)
    smin, smax = parse_version(server_min), parse_version(server_max)
    required = min(required, wanted)
    if smin > wanted:
        raise VersionError(
            f"the Zun API's oldest microversion is {format_version(smin)}, newer than "
            f"the {format_version(wanted)} this spawner asks for; set "
            "ZunSpawner.zun_api_version or upgrade magnum-spawner"
        )
    if smax >= wanted:
        return format_version(wanted)
    if smax >= required:
        return format_version(smax)
    raise VersionError(
        f"the Zun API supports microversions up to {format_version(smax)}, but this "
        f"spawner needs at least {format_version(required)}; upgrade Zun"
    )


def error_detail(response):
    """Zun's ``{"errors": [{"detail", "title", ...}]}`` as one sentence."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = ""
    request_id = response.headers.get("X-Openstack-Request-Id")
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = []
        for err in body["errors"]:
            if not isinstance(err, dict):
                continue
            text = err.get("detail") or err.get("title") or ""
            # Schema errors carry the whole JSON schema after a blank line.
            parts.append(text.split("\n\n")[0].strip())
            request_id = request_id or err.get("request_id") or None
        detail = "; ".join(p for p in parts if p)
    if not detail and response.status_code == 406:
        detail = (
            "Not Acceptable: Zun refused the OpenStack-API-Version header "
            "(it must read 'container X.Y')"
        )
    if not detail:
        detail = (response.reason or f"HTTP {response.status_code}").strip()
        if response.status_code >= 500 and not response.text:
            detail += " (empty body; a too-high OpenStack-API-Version looks like this)"
    return detail, request_id


def slim(container, hub_id):
    """The few fields ``poll()`` and the reconcile read; None if not this hub's.

    Strings and None only, so the garbage collector does not track the record:
    however many there are, they never reach the old generation whose growth
    sets off full (hub-wide, stalling) collections.  The hub's labels are
    flattened (``hub``, ``user``, ``server``, ``managed_by``) and ``addresses``
    is ``"network=address ..."``.
    """
    labels = container.get("labels") or {}
    if labels.get(LABEL_HUB) != hub_id:
        return None
    policy = container.get("restart_policy")
    return {
        "uuid": container.get("uuid"),
        "name": container.get("name"),
        "status": container.get("status"),
        "status_reason": container.get("status_reason"),
        "status_detail": container.get("status_detail"),
        "task_state": container.get("task_state"),
        "created_at": container.get("created_at"),
        "restart_policy": policy.get("Name") if isinstance(policy, dict) else None,
        "hub": labels.get(LABEL_HUB),
        "user": labels.get(LABEL_USER),
        "server": labels.get(LABEL_SERVER),
        "managed_by": labels.get(LABEL_MANAGED_BY),
        "addresses": " ".join(
            f"{net}={e.get('addr')}"
            for net, entries in (container.get("addresses") or {}).items()
            for e in entries or ()
        ),
    }
