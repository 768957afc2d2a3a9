"""Places: one hub over several cloud projects and availability zones.

A place is where a server may run: a cloud project (a clouds.yaml entry or an
``auth`` dict, with its region) and, optionally, an availability zone in it.
With :attr:`PlacesMixin.places` unset there is one place, the spawner's own
``cloud``/``auth``/``region_name``/``availability_zone``, exactly as before.

Each place has its own cloud context (session, Zun and Cinder clients, poller,
janitor); places with the same settings share them (two zones of one project:
one session, one list per interval).  The spawner's :meth:`cloud_context` is
the context of the place it is working in, so every part of the Zun path
(poll, stop, removals, homes) follows the place without knowing about it.

The choice at a start (``PlacedStart``): a user with a home starts in the
home's place, found by the owner's id (issue 17: a rename does not hand a home
over), in every place; homes in two places stop the start with a sentence for
the administrator.  A new user goes where :attr:`place_policy` says, and to the
next place when one refuses for capacity or quota; what the refusing place was
given (a container, a home made for this start) is removed before the next
place is tried, so a user never has two homes.
"""

import asyncio
import contextlib
import re
import weakref
from dataclasses import dataclass, field

from jupyterhub.spawner import SpawnException
from traitlets import Dict, Enum, List, TraitError, Unicode, validate

from ..common import cloud as cloud_registry
from ..common.errors import CloudError, OverQuota, for_user, spawn_error
from ..common.logs import adopt_library_logs
from ..common.owners import NOT_MINE, Owner, verdict
from .cinder import CinderVolumes
from .janitor import Janitor
from .objects import describe
from .settings import ZunHost

#: The keys a place may have.
PLACE_KEYS = ("name", "cloud", "auth", "region_name", "availability_zone",
              "volume_availability_zone")

#: Zun's words for a scheduler that found no host (a container's status_reason).
NO_HOST = re.compile(r"no valid host|not enough hosts", re.I)
#: A Cinder or Zun quota message's resource: ``... for resources: ['containers']``,
#: ``exceeds allowed gigabytes quota``, ``exceeded for quota 'volumes'``.
_RESOURCE = (
    re.compile(r"resources: \[?'?([\w, ']+?)'?\]"),
    re.compile(r"allowed (\w+) quota"),
    re.compile(r"for quota '(\w+)'"),
)


@dataclass(frozen=True)
class Place:
    """Where servers may run: a project (cloud or auth, region) and a zone."""

    name: str
    cloud: str | None = None
    auth: dict | None = field(default=None, hash=False, compare=False)
    region_name: str | None = None
    availability_zone: str | None = None
    volume_availability_zone: str | None = None


def parse_places(value):
    """The ``places`` setting as :class:`Place` objects; ValueError when wrong."""
    out, names = [], set()
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f"place {i + 1} is not a dict")
        unknown = set(entry) - set(PLACE_KEYS)
        if unknown:
            raise ValueError(f"place {i + 1} has unknown keys {sorted(unknown)} "
                             f"(known: {', '.join(PLACE_KEYS)})")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"place {i + 1} has no name")
        if name in names:
            raise ValueError(f"two places are named {name!r}")
        names.add(name)
        if entry.get("cloud") and entry.get("auth"):
            raise ValueError(f"place {name!r} has both cloud and auth; give one")
        if entry.get("auth") is not None and not isinstance(entry["auth"], dict):
            raise ValueError(f"place {name!r}: auth must be a dict")
        out.append(Place(**{k: entry.get(k) or None for k in PLACE_KEYS[1:]}, name=name))
    return out


def refusal(error):
    """What a failed start says about room: ``(what, detail)``, or None.

    A quota (Zun's 403, Cinder's 413, as :func:`~..common.errors.for_user`
    reports them) or a scheduler that found no host; anything else is not a
    refusal for room and is not taken to another place.
    """
    cause = getattr(error, "cloud_error", None)
    if getattr(error, "reason", None) == "quota" and isinstance(cause, OverQuota):
        service = "storage" if cause.service == "cinder" else "container"
        resource = next((m.group(1).replace("'", "") for r in _RESOURCE
                         for m in [r.search(cause.detail or "")] if m), None)
        what = f"the {service} quota is full"
        return (what + (f" ({resource})" if resource else ""), cause.detail)
    if getattr(error, "reason", None) == "container-error":
        if NO_HOST.search(error.message or ""):
            # "The server's container … is Error: <Zun's status_reason>"
            return ("the cloud has no host with room for it",
                    error.message.split(": ", 1)[-1])
    return None


# -- which servers run where (this hub process) ---------------------------------

#: (hub id, user id, server name) -> its spawner (weakly), for ``spread``
_in_use = {}


def _forget_all():
    _in_use.clear()
    _home_locks.clear()


cloud_registry.on_reset(_forget_all)


def use_counts():
    """Servers of this hub process per place: running, or starting."""
    counts = {}
    for ref in list(_in_use.values()):
        spawner = ref()
        if spawner is not None and (spawner.container_id or spawner._spawn_pending):
            name = spawner.place.name
            counts[name] = counts.get(name, 0) + 1
    return counts


#: (hub id, user id, home volume name) -> lock: a new user's servers choose one place
_home_locks = {}


class PlacesMixin(ZunHost):
    places = List(
        Dict(),
        config=True,
        help="""
        Places where servers may run, in order: each a dict with a ``name`` (shown
        to users and administrators, kept in the server's state), a cloud project
        (``cloud``: a clouds.yaml entry, or ``auth``: as :attr:`auth`; default the
        spawner's own), ``region_name`` (default :attr:`region_name`), and
        optionally the Zun ``availability_zone`` (default
        :attr:`availability_zone`) and the Cinder ``volume_availability_zone`` of
        the homes made there (default :attr:`home_volume_availability_zone`).
        Example::

            c.ZunSpawner.places = [
                {"name": "campus", "cloud": "campus-jupyter"},
                {"name": "national", "cloud": "national-cloud", "region_name": "RegionTwo"},
            ]

        A user with a home volume always starts in the place of the home (found
        by the owner's id in every place, so a home an administrator moved to
        another place is followed); a new user goes where :attr:`place_policy`
        says, and to the next place when one refuses for capacity or quota
        (Zun's "no valid host", Zun's 403 over quota, Cinder's 413).  Places
        with the same settings share one session, clients and poller.  Empty
        (the default): one place, the spawner's own settings.
        """,
    )

    place_policy = Enum(
        ["spread", "fill"],
        default_value="spread",
        config=True,
        help="""
        Where a new user (no home volume yet) starts when there are several
        :attr:`places`: ``spread`` the place with the fewest servers of this hub
        first (ties in the order of :attr:`places`), ``fill`` the places in
        order, each until it refuses for capacity or quota.
        """,
    )

    place_name = Unicode(None, allow_none=True)
    state_fields = ({"place": "place_name"},)

    @validate("places")
    def _validate_places(self, proposal):
        try:
            parse_places(proposal["value"])
        except ValueError as e:
            raise TraitError(f"{type(self).__name__}.places: {e}") from None
        return proposal["value"]

    # -- the places and the one in use --------------------------------------------

    def all_places(self):
        configured = parse_places(self.places)
        if configured:
            return configured
        return [Place(name=self.availability_zone or "default")]

    @property
    def place(self):
        """The place this server runs (or starts) in.

        A server whose state names no place ran before ``places`` was set: in
        the place that is the spawner's own project (no ``cloud``/``auth`` of
        its own, or the spawner's ``cloud``, in its region), else the first.
        """
        places = self.all_places()
        for place in places:
            if place.name == self.place_name:
                return place
        for place in places:
            own = (place.cloud is None and place.auth is None) or (
                place.cloud is not None and place.cloud == self.cloud)
            if own and (place.region_name or self.region_name) == self.region_name:
                return place
        return places[0]

    def use_place(self, place):
        if self.places:
            self.place_name = place.name
        self._zun = None

    def context_of(self, place):
        """The shared cloud context of ``place`` (the spawner's own settings
        for what the place does not set)."""
        own = place.cloud is None and place.auth is None
        return cloud_registry.get_cloud(
            cloud=self.cloud if own else place.cloud,
            auth=(self.auth or None) if own else place.auth,
            region_name=place.region_name or self.region_name,
            interface=self.interface,
            verify=self.verify if isinstance(self.verify, bool) else None,
            cacert=self.verify if isinstance(self.verify, str) else None,
        )

    def cloud_context(self):
        if not self.places:
            return super().cloud_context()
        adopt_library_logs(self.log)
        return self.context_of(self.place)

    def zun_of(self, place):
        """The Zun client of ``place``."""
        with self.working_in(place):
            return self._shared_zun_client()

    @property
    def place_zone(self):
        return self.place.availability_zone or self.availability_zone

    # -- state and the count of servers per place --------------------------------

    @property
    def _use_key(self):
        return (self.hub_id, str(self.user.id), self.name or "")

    def occupy(self):
        """Count this server in its place (while it runs or starts) for ``spread``."""
        _in_use[self._use_key] = weakref.ref(self)

    def load_state(self, state):
        super().load_state(state)
        if self.places and state.get("place") and state.get("container_id"):
            if state["place"] not in {p.name for p in self.all_places()}:
                self.log.warning("%s runs in place %r, which is no longer configured",
                                 self._log_name, state["place"])
            self.occupy()

    def by_policy(self, places):
        if self.place_policy == "fill":
            return list(places)
        counts = use_counts()
        return sorted(places, key=lambda p: counts.get(p.name, 0))  # stable: ties in order

    # -- homes --------------------------------------------------------------------

    async def _homes_in(self, cinder):
        """This server's homes in one project, found by their owner's marks."""
        owner = Owner.of(self.hub_id, self.user)
        recorded = self._recorded_volume_ids()
        found = {}
        async for _, volume in self._homes_by_metadata(cinder):
            if volume["status"] == "deleting":
                continue
            kind, _ = verdict(volume["metadata"], volume.get("created_at"), owner,
                              recorded=volume["id"] in recorded)
            if kind != NOT_MINE:
                found[volume["id"]] = volume
        return list(found.values())

    def _volume_zone(self, place):
        return place.volume_availability_zone or (
            self.home_volume_availability_zone
            if isinstance(self.home_volume_availability_zone, str) else None)

    def _place_of_home(self, volume, places):
        """Of the places of one project, the one whose homes are in the volume's zone."""
        zone = volume.get("availability_zone")
        for place in places:
            if self._volume_zone(place) and self._volume_zone(place) == zone:
                return place
        unzoned = [p for p in places if not self._volume_zone(p)]
        return (unzoned or places)[0]

    async def home_place(self, places):
        """The place of this server's home, or None (no home yet, or homes off).

        Raises a SpawnException when a place cannot be asked (the home may be
        there: never guess) or when homes are in two places.
        """
        if not await self.resolve(self.home_volume_size):
            return None
        projects = {}
        for place in places:
            try:
                context = self.context_of(place)
            except CloudError as e:
                raise for_user(e, f"log in to place {place.name}") from None
            projects.setdefault(id(context), (context, []))[1].append(place)

        async def look(context, members):
            cinder = CinderVolumes.shared(context, self.api_workers)
            try:
                return [(self._place_of_home(v, members), v) for v in await self._homes_in(cinder)]
            except CloudError as e:
                names = ", ".join(p.name for p in members)
                raise spawn_error(
                    f"The hub cannot look for your home folder in {names} ({e.detail}); "
                    "try again in a few minutes.", reason="place-unreachable",
                    log_message=f"{self._log_name}: home search in {names}: {e}",
                ) from None

        found = {}
        for pairs in await asyncio.gather(*(look(c, m) for c, m in projects.values())):
            for place, volume in pairs:
                found.setdefault(place.name, (place, []))[1].append(volume)
        if len(found) > 1:
            where = "; ".join(f"{name}: " + ", ".join(describe(v) for v in vols)
                              for name, (_, vols) in found.items())
            raise spawn_error(
                "You have home folders in more than one place; tell your administrator, "
                "who should keep one of them.", reason="home-volume-places",
                log_message=f"{self._log_name} (user id {self.user.id}) has homes in "
                f"several places ({where}); keep one (move its files first), then the "
                "user can start again",
            )
        return next(iter(found.values()))[0] if found else None

    def home_lock(self):
        key = (self.hub_id, str(self.user.id), self.home_volume_name)
        lock = _home_locks.get(key)
        if lock is None:
            lock = _home_locks[key] = asyncio.Lock()
        return lock

    async def place_note(self):
        """Where the server will run, for the options form (None: one place)."""
        if not self.places:
            return None
        places = self.all_places()
        try:
            home = await self.home_place(places)
        except SpawnException as e:
            return e.message
        if home is not None:
            return f"Your server runs in {home.name}, where your home folder is."
        order = [p.name for p in self.by_policy(places)]
        return (f"Your server will run in {order[0]}, or in the next place with room "
                f"({', '.join(order[1:])}) if {order[0]} is full.")

    async def delete_forever(self):
        """Delete the home (when configured) in the place where it is."""
        if not self.places:
            return await super().delete_forever()
        try:
            home = await self.home_place(self.all_places())
        except SpawnException as e:
            self.log.warning("%s: not deleting the home: %s", self._log_name, e.log_message)
            return
        with self.working_in(home or self.place):
            await super().delete_forever()

    # -- a home made for a start that the place then refused -----------------------

    async def _create_home_volume(self, cinder, size):
        volume = await super()._create_home_volume(cinder, size)
        self._new_home = (self.place.name, volume)
        return volume

    async def undo_new_home(self, deadline):
        """Delete the home this start made in the current place; whether it is gone.

        It never held files (its container was refused), and a home left here
        would pin the user to a place that has no room.
        """
        made = getattr(self, "_new_home", None)
        self._new_home = None
        if made is None or made[0] != self.place.name:
            return True
        volume = made[1]
        pending = [j for j in (self.janitor.active(e["name"]) for e in self.to_remove
                               if e.get("place", self.place.name) == self.place.name) if j]
        loop = asyncio.get_running_loop()
        await self.janitor.wait(pending, max(min(deadline - loop.time(), 30.0), 0))
        try:
            await self._delete_home_volume(self.cinder, volume)
        except CloudError as e:
            self.log.warning("%s: the home %s made in %s, which refused the server, "
                             "could not be deleted: %s", self._log_name, describe(volume),
                             self.place.name, e)
            return False
        self.home_volume_id = None
        self.log.info("%s: deleted the new home %s in %s, which refused the server",
                      self._log_name, describe(volume), self.place.name)
        return True

    async def home_zone(self):
        zone = self.place.volume_availability_zone if self.places else None
        return zone or await super().home_zone()

    # -- removals in the place they belong to -------------------------------------

    def janitor_of_place(self, name):
        for place in self.all_places():
            if self.places and place.name == name and name != self.place_name:
                return Janitor.for_client(self.zun_of(place))
        return self.janitor

    @contextlib.contextmanager
    def working_in(self, place):
        """Work in ``place`` for a moment (the server's own place stays)."""
        saved = self.place_name, self._zun
        self.place_name, self._zun = place.name, None
        try:
            yield
        finally:
            self.place_name, self._zun = saved

    def _hand_over_in(self, name, entry):
        place = next(p for p in self.all_places() if p.name == name)
        with self.working_in(place):
            return self._hand_over(entry["name"], uuid=entry["id"], by_name=not entry["id"])

    async def _sweep(self):
        """What a start that never finished left, in every place it may have tried."""
        if not self.places:
            return await super()._sweep()
        seen = set()
        for place in self.all_places():
            zun = self.zun_of(place)
            if id(zun) in seen:
                continue
            seen.add(id(zun))
            with self.working_in(place):
                await super()._sweep()

    # -- the start ------------------------------------------------------------------

    async def _start(self):
        places = self.all_places()
        if not self.places:
            return await self._start_here()
        loop = asyncio.get_running_loop()
        deadline = self._deadline
        if self.container_id:
            # an earlier container (a stop that did not finish), in its own place
            self._hand_over(self.container_name_in_state or self.container_name,
                            uuid=self.container_id, by_name=False)
            self.container_id = None
        lock = self.home_lock()
        await lock.acquire()
        try:
            self._phase = "looking for your home folder"
            try:
                home = await asyncio.wait_for(self.home_place(places),
                                              max(deadline - loop.time(), 0.1))
            except asyncio.TimeoutError:
                raise spawn_error(
                    f"The server did not start within {self.start_timeout} s (the hub "
                    "was still looking for your home folder); try again in a minute.",
                    reason="timeout") from None
            if home is not None:
                # one home, one place: the user's other servers need not wait
                lock.release()
                return await self._start_in([home], pinned=True)
            # a new home: the user's other servers wait, then find it
            return await self._start_in(self.by_policy(places), pinned=False)
        finally:
            if lock.locked():
                lock.release()

    async def _start_in(self, candidates, pinned):
        refused = []
        for i, place in enumerate(candidates):
            self.use_place(place)
            self.occupy()
            self._new_home = None
            self.log.info("%s: starting in place %s%s", self._log_name, place.name,
                          " (its home is there)" if pinned else "")
            try:
                return await self._start_here()
            except SpawnException as e:
                why = refusal(e)
                if why is None:
                    raise
                self.log.warning("%s: place %s refused the server: %s", self._log_name,
                                 place.name, e.log_message)
                refused.append((place, why))
                kept = pinned or not await self.undo_new_home(self._deadline)
                if kept or i == len(candidates) - 1:
                    raise self._no_room(refused, home_there=kept) from None
                self.emit(None, f"{place.name} has no room for your server "
                          f"({why[0]}); trying {candidates[i + 1].name}")

    def _no_room(self, refused, home_there):
        place, (what, detail) = refused[-1]
        if home_there:
            message = (f"Your server cannot start in {place.name}, where your home folder "
                       f"is: {what} ({detail}). Try again later, or ask your "
                       "administrator to move your home folder to another place.")
        else:
            each = "; ".join(f"{p.name}: {w}" for p, (w, _) in refused)
            message = (f"No place has room for your server ({each}). Try again later, "
                       "or tell your administrator.")
        return spawn_error(message, reason="no-room", status_code=403,
                           log_message=f"{self._log_name}: " + "; ".join(
                               f"{p.name}: {w} ({d})" for p, (w, d) in refused))
