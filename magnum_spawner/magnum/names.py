"""Kubernetes object names without collisions, by the scheme of ``..common.names``.

Kubernetes names (DNS labels) allow fewer characters than Zun's: ``[a-z0-9-]``,
no ``.`` or ``_``.  The scheme is the same: a *plain* slug is the text itself
when it is already made of those, has no ``--`` and fits; anything else is the
safe characters left, ``---`` and 65 bits of the text's SHA-256.  Joined with
``--``, two different (user, server) pairs never give one name.
KubeSpawner's own ``safe`` slugs carry a 32-bit hash, which collided between
two Greek user names on the Zun side (see ``..common.names``).
"""

import re
import string

from ..common.names import _HASH_LEN, _hash

_PLAIN_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_UNSAFE_RE = re.compile(r"[^a-z0-9]+")


def slug(text, max_length):
    if _PLAIN_RE.fullmatch(text) and "--" not in text and len(text) <= max_length:
        return text
    safe = _UNSAFE_RE.sub("-", text.lower()).strip("-")
    safe = safe[: max(max_length - _HASH_LEN - 3, 0)].strip("-")
    return f"{safe or 'x'}---{_hash(text)}"


def fields(username, servername=""):
    """``{username}``, ``{servername}`` and ``{user_server}`` for name templates;
    with the ``jupyter-`` or ``home-`` prefix, at most 60 characters."""
    user = slug(username, 30)
    server = slug(servername, 20) if servername else ""
    return {
        "username": user,
        "servername": server,
        "user_server": f"{user}--{server}" if server else user,
    }


def fill(template, values):
    """``template`` with these fields replaced and every other field left."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: values.get(m.group(1), m.group(0)),
        template,
    )


def names_server(template):
    """Whether a name template gives each server of a user its own name (a field
    of the server's, or the pod's name), not one name for all of them."""
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    return any("server" in f for f in fields) or "pod_name" in fields
