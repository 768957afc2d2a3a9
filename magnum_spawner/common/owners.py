"""Whose home a volume or claim is: the hub's user id, which a rename keeps.

An administrator may rename a user (``PATCH /users/alice {"name": "bob"}``):
JupyterHub keeps the user's id, servers and their saved state, and the old
name is free for a new person.  A home's name (``home-alice``) and the user
name recorded on it say whom it was made for *then*, so they cannot tell bob's
home from a new alice's.  Every home made now records the user's id and the
hub's (``hub.jupyter.org/user-id``, ``hub.jupyter.org/hub``), and a home is
given to a user only on that evidence.

Homes made before (no id; and volumes an administrator made) are adopted only
when the hub's own record says this user mounted it (its id is in the saved
state of one of the user's servers) and it was not made before the user's
account existed; a home made before the account is some earlier user's of the
same name (or of a hub database that was replaced).  Anything else is
:data:`UNSURE`: the start stops with a sentence for the administrator, who
decides by setting the owner's id on it.

Pure functions: the Zun path (Cinder metadata) and the Magnum path (claim
labels and annotations) both ask :func:`verdict`.
"""

import datetime
from dataclasses import dataclass

from .names import LABEL_HUB, LABEL_USER, LABEL_USER_ID

#: The verdicts: the user's own home; another's; one made before ids were
#: recorded that is this user's by the hub's record (record the id on it);
#: one whose owner cannot be told.
MINE, NOT_MINE, ADOPT, UNSURE = "mine", "not-mine", "adopt", "unsure"

#: What the spawn page says when a home's owner cannot be told (reason
#: ``home-volume-owner``; the hub's log says which home and what to set).
OWNER_SENTENCE = (
    "A home volume carries your name but the hub cannot tell whether it is yours; "
    "tell your administrator, who decides whose it is (see docs/home-volumes.md).")

#: The hub's and the cloud's clocks may differ a little: a home counts as made
#: before the account only by more than this.
CLOCK_SLACK = datetime.timedelta(minutes=2)


def _utc(value):
    """A datetime (or Cinder/Kubernetes ISO text) as an aware UTC datetime, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if value.tzinfo is None:  # JupyterHub and Cinder keep naive UTC times
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


@dataclass(frozen=True)
class Owner:
    """A hub user as homes know them."""

    hub_id: str
    user_id: str
    name: str
    #: when the user's account was made (JupyterHub's ``users.created``)
    created: datetime.datetime | None = None

    @classmethod
    def of(cls, hub_id, user):
        return cls(hub_id, str(user.id), user.name, _utc(getattr(user, "created", None)))

    def marks(self):
        """What a home records about its owner."""
        return {LABEL_HUB: self.hub_id, LABEL_USER_ID: self.user_id, LABEL_USER: self.name}

    def made_before_account(self, made_at):
        made_at = _utc(made_at)
        return bool(made_at and self.created and made_at < self.created - CLOCK_SLACK)


def verdict(marks, made_at, owner, *, recorded):
    """``(verdict, why)`` for a home carrying ``marks`` (its metadata or labels
    and annotations), made at ``made_at``, for ``owner``.

    ``recorded``: the hub's saved state of one of the owner's servers names
    this home.  ``why`` is a phrase for the administrator (UNSURE, NOT_MINE).
    """
    user_id = marks.get(LABEL_USER_ID)
    hub = marks.get(LABEL_HUB)
    if user_id is not None:
        if user_id != owner.user_id or (hub is not None and hub != owner.hub_id):
            why = f"it belongs to user id {user_id} of hub {hub}"
            return (UNSURE if recorded else NOT_MINE), why
        if owner.made_before_account(made_at):
            return UNSURE, (f"it carries your user id {user_id} but was made before "
                            "your account (was the hub's database replaced?)")
        return MINE, None
    if hub is not None and hub != owner.hub_id:
        return NOT_MINE, f"it is hub {hub}'s"
    named = marks.get(LABEL_USER)
    if named is not None and named != owner.name and not recorded:
        return NOT_MINE, f"it is {named}'s"
    if owner.made_before_account(made_at):
        return UNSURE, ("it was made before your account, so it may be the home of "
                        "an earlier user of that name")
    if recorded:
        return ADOPT, None
    return UNSURE, "it records no owner id, and your servers have never used it"
