"""Home claims tied to the hub's user id, which a rename keeps (issue 17, item 1).

KubeSpawner names a claim by template (``home-{username}``) and, when a claim
of that name exists, uses it (a create answered 409 counts as done): after an
administrator renames alice to bob, a new alice would be given bob's claim.
Before KubeSpawner's start, :func:`own_home_claim` settles which claim this
server mounts, by the owner marks of :mod:`..common.owners` (the user's id as
the label ``hub.jupyter.org/user-id``, the hub's id and the user's name as
annotations):

- the claim of the server's name that is this user's (a claim made before ids
  were recorded is adopted when the hub's state names it and it is not older
  than the account);
- else the user's claim found by the id label (a renamed user, whose name, and
  so the template's claim name, changed);
- else a new claim: under the template's name, or, when another user's claim
  has that name, under that name with ``---u<id>`` (a plain slug never holds
  ``--``; an escaped one ends in 13 hash characters, so no template makes it).

A claim whose owner cannot be told stops the start with the same sentence as
a Cinder volume's.  KubeSpawner then finds the claim existing and only mounts it.
"""

from kubernetes_asyncio.client.rest import ApiException

from ..common.errors import spawn_error
from ..common.names import LABEL_HUB, LABEL_SERVER, LABEL_USER, LABEL_USER_ID, per_server
from ..common.owners import ADOPT, MINE, NOT_MINE, OWNER_SENTENCE, UNSURE, Owner, verdict


def owner_of(spawner):
    return Owner.of(spawner.hub_id, spawner.user)


def marks(spawner):
    """``(labels, annotations)`` that say whose a claim is."""
    owner = owner_of(spawner)
    annotations = {LABEL_HUB: owner.hub_id, LABEL_USER: owner.name}
    if per_server(spawner.pvc_name_template):
        annotations[LABEL_SERVER] = spawner.name or ""
    return {LABEL_USER_ID: owner.user_id}, annotations


def mark_manifest(spawner, pvc):
    """Put the owner marks on KubeSpawner's claim manifest."""
    labels, annotations = marks(spawner)
    pvc.metadata.labels = {**(pvc.metadata.labels or {}), **labels}
    pvc.metadata.annotations = {**(pvc.metadata.annotations or {}), **annotations}
    return pvc


def _marks_of(claim):
    meta = claim.metadata
    return {**(meta.annotations or {}), **(meta.labels or {})}


def _for_this_server(spawner, claim):
    """A claim found by the user's id is this server's (per-server templates)."""
    server = (claim.metadata.annotations or {}).get(LABEL_SERVER)
    if not per_server(spawner.pvc_name_template):
        return server is None
    return server == (spawner.name or "") or (server is None and not spawner.name)


def _recorded_claims(spawner):
    """Claim names in the hub's saved state of this user's servers."""
    names = {getattr(spawner, "_state_pvc_name", None)}
    for orm_spawner in (getattr(spawner.user, "orm_spawners", None) or {}).values():
        names.add((getattr(orm_spawner, "state", None) or {}).get("pvc_name"))
    return names - {None}


async def _read(spawner, name):
    try:
        return await spawner.api.read_namespaced_persistent_volume_claim(
            name=name, namespace=spawner.namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _owner_error(spawner, name, why):
    owner = owner_of(spawner)
    return spawn_error(
        OWNER_SENTENCE, reason="home-volume-owner",
        log_message=f"{spawner._log_name} (user id {owner.user_id}): claim "
        f"{spawner.namespace}/{name}: {why}. If it is this user's, "
        f"label it {LABEL_USER_ID}={owner.user_id} (annotation {LABEL_HUB}="
        f"{owner.hub_id}); if it is another user's, label it with their id; "
        "then start again",
    )


async def _judge(spawner, claim):
    kind, why = verdict(_marks_of(claim), claim.metadata.creation_timestamp,
                        owner_of(spawner),
                        recorded=claim.metadata.name in _recorded_claims(spawner))
    if kind == UNSURE:
        raise _owner_error(spawner, claim.metadata.name, why)
    if kind == ADOPT:
        await _stamp(spawner, claim)
    if kind == NOT_MINE:
        spawner.log.warning("%s: claim %s is not this user's (%s)",
                            spawner._log_name, claim.metadata.name, why)
    return kind


async def _stamp(spawner, claim):
    """Record the owner on a claim made before ids were recorded."""
    labels, annotations = marks(spawner)
    try:
        await spawner.api.patch_namespaced_persistent_volume_claim(
            name=claim.metadata.name, namespace=spawner.namespace,
            body={"metadata": {"labels": labels, "annotations": annotations}})
    except ApiException as e:
        # e.g. a Role granted before claims could be patched: the next signing
        # grants it; the hub's record already says whose it is
        spawner.log.warning("%s: could not record the owner on claim %s: %s",
                            spawner._log_name, claim.metadata.name, e.reason)


async def _by_id(spawner):
    """This server's claim found by the user's id label, or None."""
    found = await spawner.api.list_namespaced_persistent_volume_claim(
        namespace=spawner.namespace,
        label_selector=f"{LABEL_USER_ID}={owner_of(spawner).user_id}")
    claims = [c for c in found.items if _for_this_server(spawner, c)]
    mine = [c for c in claims if await _judge(spawner, c) == MINE]
    if len(mine) > 1:
        names = ", ".join(sorted(c.metadata.name for c in mine))
        raise spawn_error(
            f"There are {len(mine)} home volumes for this server ({names}); tell your "
            "administrator, who should keep one of them.", reason="home-volume-duplicate")
    return mine[0] if mine else None


def _spare_name(spawner):
    suffix = f"---u{owner_of(spawner).user_id}"
    return spawner.pvc_name[: 63 - len(suffix)].rstrip("-") + suffix


async def own_home_claim(spawner):
    """Settle ``spawner.pvc_name`` on this user's claim, made if missing."""
    name = spawner.pvc_name
    claim = await _read(spawner, name)
    if claim is not None and await _judge(spawner, claim) != NOT_MINE:
        spawner._pvc_exists = True
        return name
    found = await _by_id(spawner)
    if found is None and claim is not None:
        # the template's name is another user's: this user's own claim is
        # under the spare name
        name = _spare_name(spawner)
        spare = await _read(spawner, name)
        if spare is not None and await _judge(spawner, spare) != NOT_MINE:
            found = spare
    if found is not None:
        spawner.pvc_name = found.metadata.name
        spawner._pvc_exists = True
        return spawner.pvc_name
    spawner.pvc_name = name
    try:
        await spawner.api.create_namespaced_persistent_volume_claim(
            namespace=spawner.namespace, body=spawner.get_pvc_manifest())
    except ApiException as e:
        if e.status != 409:
            raise
        # made meanwhile (or by our own create whose answer was lost): only
        # if it is this user's
        claim = await _read(spawner, name)
        if claim is None or await _judge(spawner, claim) == NOT_MINE:
            raise _owner_error(spawner, name, "it was made meanwhile for another "
                               "user") from None
    spawner._pvc_exists = True
    return name


async def may_delete(spawner):
    """Whether ``delete_forever`` may delete the claim of ``spawner.pvc_name``:
    only this user's own (a new alice never deletes a renamed bob's)."""
    claim = await _read(spawner, spawner.pvc_name)
    if claim is None:
        return True
    kind, why = verdict(_marks_of(claim), claim.metadata.creation_timestamp,
                        owner_of(spawner),
                        recorded=claim.metadata.name in _recorded_claims(spawner))
    if kind in (MINE, ADOPT):
        return True
    spawner.log.warning("Not deleting claim %s of %s: %s", claim.metadata.name,
                        spawner._log_name, why)
    return False
