"""Names and labels of what the hub makes, built from JupyterHub user and server names.

Labels (``hub.jupyter.org/*``) say which hub, user and server a container or
volume belongs to; names are for people and must never collide.

Zun accepts names matching ``^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`` and does not enforce
uniqueness, so the spawner must never let two different (user, server) pairs map
onto one name.  The scheme:

- a *plain* slug is the input itself when it is already lower-case, made of
  ``[a-z0-9._-]``, starts and ends with a letter or digit, contains no ``--`` and
  fits the length budget;
- anything else becomes an *escaped* slug: the safe characters that remain, then
  ``---`` and 65 bits of the SHA-256 of the original text in lower-case base32
  (13 characters: at a million users the chance that any two of them share a
  hash is below one in ten million);
- user and server slugs are joined with ``--``.

A plain slug never contains ``--`` and an escaped one always contains ``---``, so a
joined name can be split back unambiguously: two different pairs cannot collide.
"""

import base64
import hashlib
import re

LABEL_PREFIX = "hub.jupyter.org/"
LABEL_HUB = LABEL_PREFIX + "hub"
LABEL_USER = LABEL_PREFIX + "user"
#: the hub's user id, which a rename keeps (see owners.py)
LABEL_USER_ID = LABEL_PREFIX + "user-id"
LABEL_SERVER = LABEL_PREFIX + "server"
LABEL_MANAGED_BY = LABEL_PREFIX + "managed-by"
#: the user's choice, recorded on the container
LABEL_FLAVOR = LABEL_PREFIX + "flavor"
LABEL_IMAGE = LABEL_PREFIX + "image"
MANAGED_BY = "magnum-spawner"

#: Zun's name pattern; always applied with fullmatch (``$`` would let a
#: trailing newline through).
ZUN_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# Zun allows 255 characters, but the name often becomes the container's hostname,
# which DNS limits to 63.
MAX_NAME_LENGTH = 63
#: Cinder's volume name limit.
MAX_VOLUME_NAME_LENGTH = 255

_PLAIN_RE = re.compile(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?")
_UNSAFE_RE = re.compile(r"[^a-z0-9._-]+")
#: 13 base32 characters carry 65 bits.
_HASH_LEN = 13


def _hash(text):
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_HASH_LEN]


def is_plain(text, max_length):
    return (
        _PLAIN_RE.fullmatch(text) is not None
        and "--" not in text
        and len(text) <= max_length
    )


def slug(text, max_length=30):
    """A readable, collision-free slug of ``text`` at most ``max_length`` long."""
    if is_plain(text, max_length):
        return text
    safe = _UNSAFE_RE.sub("-", text.lower())
    safe = re.sub(r"-{2,}", "-", safe).strip("-._")
    keep = max(max_length - _HASH_LEN - 3, 0)
    safe = safe[:keep].rstrip("-._")
    digest = _hash(text)
    return f"{safe}---{digest}" if safe else f"x---{digest}"


def user_server_slug(username, servername=""):
    """The joined slug for a user's (possibly named) server."""
    user = slug(username, 30)
    if not servername:
        return user
    return f"{user}--{slug(servername, 20)}"


def validate_name(name):
    """Raise ValueError with a readable reason when ``name`` is not a valid Zun name."""
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"container name {name!r} is {len(name)} characters long; "
            f"the limit is {MAX_NAME_LENGTH} (it is used as a hostname)"
        )
    if not ZUN_NAME_RE.fullmatch(name):
        raise ValueError(
            f"container name {name!r} does not match Zun's pattern "
            f"^{ZUN_NAME_RE.pattern}$"
        )
    return name


def _fields(username, servername, extra):
    fields = dict(extra)
    fields.update(
        username=slug(username, 30),
        servername=slug(servername, 20) if servername else "",
        user_server=user_server_slug(username, servername),
    )
    return fields


def container_name(template, username, servername="", **extra):
    """Expand ``template`` with the slug fields and check the result.

    Fields: ``{username}`` and ``{servername}`` (each slugged), ``{user_server}``
    (the two joined as described above), plus any ``extra`` fields given.
    """
    return validate_name(template.format(**_fields(username, servername, extra)))


def volume_name(template, username, servername="", **extra):
    """Expand the home volume's name template with the same collision-free slugs."""
    name = template.format(**_fields(username, servername, extra))
    if not name or len(name) > MAX_VOLUME_NAME_LENGTH:
        raise ValueError(
            f"home volume name {name!r} must be 1-{MAX_VOLUME_NAME_LENGTH} characters"
        )
    return name


def per_server(template):
    """Whether the volume name template gives each named server a volume of its own."""
    return "{servername}" in template or "{user_server}" in template


def hub_labels(hub_id, username, servername=""):
    """The labels by which a hub recognises its own containers and volumes."""
    return {
        LABEL_HUB: hub_id,
        LABEL_USER: username,
        LABEL_SERVER: servername or "",
        LABEL_MANAGED_BY: MANAGED_BY,
    }
