"""Deleting containers of this hub that no server of the hub owns (opt-in).

A container is an orphan when it carries this hub's labels (``hub`` and
``managed-by``), its ``user`` and ``server`` labels name no server in the hub's
database (a stopped container kept with ``delete_stopped_containers = False``
belongs to its server: JupyterHub clears the state at stop, not the server),
and neither its uuid nor its name appears in any server's saved state there,
nor in a server of this process (a start still in flight has not saved its
state yet).  It is deleted only after it has been an orphan in every full list
for ``grace`` seconds: one glance never deletes.

Only containers (and the floating IPs the hub made for them), and only this
hub's: volumes are never touched (a home volume outlives its containers by
design), nor anything of another hub.
"""

import asyncio
import logging
import warnings
import weakref

from ..common.errors import CloudError
from ..common.names import MANAGED_BY
from .objects import description

log = logging.getLogger(__name__)


def state_strings(state):
    """Every string in a spawner's saved state: uuids and names it may own.

    Read generously (any key, nested), so that an identifier saved under a key
    this module does not know about still protects its container.
    """
    out = set()
    stack = [state]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return out


def saved_states(session):
    """The state of every server in the hub's database."""
    from jupyterhub import orm

    with warnings.catch_warnings():
        # JupyterHub's JSONDict column type does not declare cache_ok
        warnings.simplefilter("ignore")
        return [row[0] for row in session.query(orm.Spawner.state)]


def existing_servers(session):
    """``{(user name, server name)}`` of every server in the hub's database."""
    from jupyterhub import orm

    return set(session.query(orm.User.name, orm.Spawner.name).join(
        orm.Spawner, orm.Spawner.user_id == orm.User.id))


class OrphanReconciler:
    """Runs after each complete full list of a hub's poller."""

    def __init__(self, client, hub_id, grace):
        self.client = client
        self.hub_id = hub_id
        self.grace = grace
        self.spawners = weakref.WeakSet()
        #: uuid -> loop time it was first seen as an orphan (in a row)
        self.orphan_since = {}
        self.deleted = []
        #: the hub's floating IP client when servers get floating IPs
        self.floating_ips = None

    @classmethod
    def attach(cls, poller, grace):
        """The poller's reconciler, created (and hooked to its full lists) once."""
        for callback in poller.after_full:
            if isinstance(callback, cls):
                callback.grace = grace
                return callback
        reconciler = cls(poller.client, poller.hub_id, grace)
        poller.after_full.append(reconciler)
        return reconciler

    def _session(self):
        for spawner in list(self.spawners):
            session = spawner.hub_db_session()
            if session is not None:
                return session
        return None

    def _owned_here(self):
        owned = set()
        for spawner in list(self.spawners):
            owned.update(spawner.owned_container_identifiers())
        return owned

    async def __call__(self, records):
        loop = asyncio.get_running_loop()
        now = loop.time()
        ours = [
            r for r in records
            if r["hub"] == self.hub_id and r["managed_by"] == MANAGED_BY
            and r["status"] != "Deleting"
        ]
        owned = self._owned_here()
        candidates = [r for r in ours if r["uuid"] not in owned and r["name"] not in owned]
        if candidates:
            session = self._session()
            if session is None:
                log.warning("Orphan clean-up: no hub database reachable; nothing deleted")
                self.orphan_since.clear()
                return
            for state in saved_states(session):
                owned.update(state_strings(state or {}))
            servers = existing_servers(session)
            candidates = [r for r in candidates
                          if r["uuid"] not in owned and r["name"] not in owned
                          and (r["user"], r["server"] or "") not in servers]
        since = {r["uuid"]: self.orphan_since.get(r["uuid"], now) for r in candidates}
        self.orphan_since = since
        for record in candidates:
            if now - since[record["uuid"]] < self.grace:
                continue
            log.warning(
                "Deleting container %s (%s): it carries hub %s's labels but no server "
                "of the hub has owned it for %.0f s", record["name"], record["uuid"],
                self.hub_id, now - since[record["uuid"]],
            )
            try:
                if self.floating_ips is not None:
                    # the IP first: once the container is gone nothing names it
                    await self.floating_ips.release(description(self.hub_id, record["name"]))
                await self.client.delete(record["uuid"])
            except CloudError as e:
                log.warning("Could not delete orphan container %s: %s", record["uuid"], e)
                continue
            self.deleted.append(record["uuid"])
            self.orphan_since.pop(record["uuid"], None)
