"""ZunSpawner: each single-user server is an OpenStack Zun container.

This module is orchestration only.  The settings are in ``settings`` (and the
shared ones in ``common.host``), the user's choice of flavor and image in
``common.flavors``/``common.choice``, request bodies in ``objects``, HTTP in
``client``, the hub-wide poll loop in ``poller``, home volumes in
``home_volumes`` and floating IPs in ``reachability``.
"""

import asyncio
import time

from jupyterhub.spawner import Spawner, SpawnException
from sqlalchemy import inspect as sa_inspect

from .. import metrics
from . import objects
from . import progress as steps
from ..common import answering
from ..common.answering import AnsweringMixin
from ..common.deadline import own_deadline, timed_out, within
from ..common.admission import AdmissionMixin, NoTurn
from ..common.errors import CloudError, NotFound, for_user, is_transient, spawn_error
from ..common.flavors import FlavorMixin
from ..common.page import SpawnPage
from ..common.waiting import wait_until
from .home_volumes import HomeVolumeMixin
from .orphans import OrphanReconciler, state_strings
from .places import PlacesMixin
from .poller import GONE, LISTED, QUIET, HubPoller, freeze_heap_once
from .reachability import FLOATING_IP, ReachabilityMixin
from .removals import RemovalMixin

#: What the user reads ("Could not …") when a cloud call of a step before the
#: create fails, by the step's phase.
PREPARE_ACTIONS = {
    "choosing the flavor": "choose your server's size",
    "checking the Zun API": "reach the cloud's container service",
    "removing the previous server": "check for an earlier server of yours",
    "preparing the home volume": "prepare your home folder",
}

#: the container log lines read when a start fails (a failure's first line sits
#: above its traceback) ...
LOG_TAIL = 200
#: ... and how many of the last go into the hub's log
LOG_LINES = 20


def last_lines(logs, count=LOG_LINES):
    return "\n".join(logs.rstrip("\n").splitlines()[-count:])


class ZunSpawner(PlacesMixin, HomeVolumeMixin, FlavorMixin, ReachabilityMixin, RemovalMixin,
                 AdmissionMixin, AnsweringMixin, SpawnPage, Spawner):
    """Spawn single-user servers as OpenStack Zun containers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._created_at = None
        self._unknown_since = None
        #: the exit status poll() reported when it removed the ended container
        self._ended = None
        #: what start() is doing, for a timeout's message
        self._phase = "starting"
        #: Zun statuses this spawner does not know, already logged (once each)
        self._unmapped_seen = set()

    def log_step(self, progress, message):
        """A spawn page step's log line (common/page.py), structured."""
        self._log_phase("progress", progress=progress, step=message,
                        volume=getattr(self, "home_volume_id", None))

    async def build_body(self, name, choice, mounts):
        """The create body for container ``name`` running the user's ``choice``."""
        labels = dict(await self.resolve(self.labels) or {})
        labels.update(self.own_labels)
        # Secrets go in as files: Zun shows a container's environment to every
        # member of the project.
        environment, secrets = objects.split_secrets(
            self.get_env(), self.secret_environment_names, tokens=[self.api_token]
        )
        try:
            command, secret_mounts = objects.inject_secrets(
                list(self.cmd) + list(self.get_args()), secrets, self.secrets_dir
            )
        except ValueError as e:
            raise spawn_error(
                "The server's environment cannot be passed safely; tell your "
                "administrator.", reason="config", log_message=str(e),
            ) from None
        return objects.build_container(
            name=name,
            choice=choice,
            command=command,
            environment=environment,
            labels=labels,
            network=self.network,
            security_groups=self.security_groups,
            exposed_ports=self.exposed_ports_for_body(),
            availability_zone=self.place_zone,
            hints=self.hints,
            restart=self.restart_policy,
            mounts=list(mounts) + secret_mounts,
            workdir=self.workdir,
        )

    #: Seconds to keep looking, after a create without a clear answer, for the
    #: container it may have made (Zun records it before answering; a reset
    #: connection can hide a commit made a moment later).
    lost_create_window = 10.0
    #: Creates sent at most, each only after a look by name found nothing of the
    #: one before (a 5xx or reset on the way to Zun, as in the fault burst).
    create_attempts = 3
    #: Seconds between two looks at Zun while a container is made or comes up
    #: (the first wait; it grows by half each look up to the maximum): soon
    #: enough for the spawn page, few enough calls for a hub of many starts.
    look_interval = 0.5
    max_look_interval = 3.0

    async def _create(self, body, deadline):
        """Create; without a clear answer, find what the request made.

        A 4xx means Zun made nothing.  A 5xx (a proxy's 504, say) or no answer
        at all may hide a container that exists: look it up by name and adopt
        it.  Only when the look shows nothing after ``lost_create_window`` is
        the create sent again (``create_attempts`` in all, within the deadline):
        never a second container.
        """
        name = body["name"]
        for attempt in range(1, self.create_attempts + 1):
            try:
                return await self.zun.create(body, run=True)
            except CloudError as e:
                if not is_transient(e):
                    raise
                lost = e
            self.log.warning("Create of %s got no clear answer (%s); looking it up",
                             name, lost)
            found = await self._made_by(name, deadline)
            if found is not None:
                self.log.info("Create of %s had made container %s", name, found["uuid"])
                return found
            if attempt == self.create_attempts or time.monotonic() >= deadline - 1:
                raise lost
            self.log.info("Create of %s made nothing; sending it again (try %d of %d)",
                          name, attempt + 1, self.create_attempts)

    async def _made_by(self, name, deadline):
        """This server's container ``name`` if a create made it, else None."""
        async def made():
            try:
                return (await self._find_ours(name)) or None
            except CloudError as e:
                if not is_transient(e):
                    raise
                return None

        until = min(deadline, time.monotonic() + self.lost_create_window)
        try:
            return (await wait_until(made, deadline=until, interval=self.look_interval))[0]
        except TimeoutError:
            return None

    async def _find_ours(self, name):
        """This server's containers named ``name``, oldest first."""
        found = [
            c for c in await self.zun.find_by_name(name)
            if objects.is_ours(c, self.own_labels)
        ]
        return sorted(found, key=lambda c: c.get("created_at") or "")

    async def _wait_running(self, uuid, deadline):
        """The container once Running with an address, or stopped; TimeoutError(status)."""
        last = shown = None

        async def look():
            nonlocal last, shown
            try:
                container = await self.zun.get(uuid)
            except CloudError as e:
                # A 500 or a reset while Zun works on the container says
                # nothing about the container: look again until the deadline.
                if not is_transient(e):
                    raise
                self.log.warning("%s: reading container %s failed, retrying: %s",
                                 self._log_name, uuid, e)
                return None
            last = container.get("status")
            step = steps.container_step(container, self.home_volume_mounted)
            if step is not None and step != shown:
                self.emit(*step)
                shown = step
            if last == "Running" and objects.container_address(container, self.network):
                return container
            return container if last in objects.STOPPED_STATES else None

        try:
            return await wait_until(look, deadline=deadline, interval=self.look_interval,
                                    backoff=1.5, max_interval=self.max_look_interval)
        except TimeoutError:
            raise TimeoutError(last) from None

    async def _prepare(self, name, deadline):
        """Everything before the create; returns its body."""
        self._phase = "choosing the flavor"
        choice = await self.apply_flavor()
        self._phase = "checking the Zun API"
        await self.zun.ensure_version()
        self._phase = "removing the previous server"
        # an earlier spawn's floating IP (a crash before its stop), found by
        # its description even when the state lost it
        await self.release_floating_ip()
        await self._clear_the_way(name, deadline)
        self._phase = "preparing the home volume"
        mounts = await self.prepare_home_volume()
        return await self.build_body(name, choice, mounts)

    def _log_phase(self, phase, **fields):
        """One structured line per spawn phase (metrics.py: grep its request id
        in the hub's and the cloud's logs)."""
        self.log.info("spawn %s", metrics.logfmt(
            phase=phase, user=self.user.name, server=self.name or "",
            container=self.container_id, request=getattr(self, "_request_id", None),
            **fields))

    async def start(self):
        freeze_heap_once(self.hub_gc_freeze)  # before a burst of starts, not after
        self._request_id = metrics.new_request_id()
        metrics.REQUEST_ID.set(self._request_id)  # this task's context only
        started = asyncio.get_running_loop().time()
        self._log_phase("begin", image=self.image if isinstance(self.image, str) else None)
        # our message, not JupyterHub's "Timeout", ends a start out of time
        self._deadline = own_deadline(self.start_timeout)
        self.new_page()  # the spawn page's steps, from the wait for a turn on
        self._phase = "starting"
        try:
            async with self.admitted(self._deadline):
                url = await within(self._start(), self._deadline, self.start_timeout,
                                   lambda: self._phase)
        except NoTurn as e:
            metrics.count_spawn_failure("timeout")
            self._log_phase("failed", cause="queued",
                            seconds=f"{asyncio.get_running_loop().time() - started:.2f}")
            raise timed_out(self.start_timeout, e) from None
        except SpawnException as e:
            metrics.count_spawn_failure(e.reason)
            self._log_phase("failed", cause=e.reason,
                            seconds=f"{asyncio.get_running_loop().time() - started:.2f}")
            raise
        except asyncio.CancelledError:  # JupyterHub's start_timeout came first
            metrics.count_spawn_failure("cancelled")
            self._log_phase("failed", cause="cancelled",
                            seconds=f"{asyncio.get_running_loop().time() - started:.2f}")
            # what is left was handed over above; JupyterHub 5.2+ shows this
            raise timed_out(self.start_timeout, self._phase) from None
        self._log_phase("started", url=url,
                        seconds=f"{asyncio.get_running_loop().time() - started:.2f}")
        return url

    async def _start_here(self):
        """The start in the place chosen (``places``: ``_start`` chooses)."""
        self._ended = None
        self._unknown_since = None
        if self.use_hub_poller and self.cleanup_orphans:
            self._hub_poller()
        loop = asyncio.get_running_loop()
        deadline = self._deadline  # start()'s, the wait for a turn included
        try:
            name = self.container_name
        except ValueError as e:
            raise spawn_error(str(e), reason="name", status_code=500) from None
        try:
            # Each phase has its own limits; this bounds them all by start's.
            body = await asyncio.wait_for(
                self._prepare(name, deadline), max(deadline + 0.5 - loop.time(), 0)
            )
        except asyncio.TimeoutError:
            raise spawn_error(
                f"The server did not start within {self.start_timeout} s (the hub was "
                f"still {self._phase}); try again in a minute.",
                reason="timeout",
            ) from None
        except SpawnException:
            raise
        except CloudError as e:
            # the step it failed in, not the create that was never sent
            raise for_user(e, PREPARE_ACTIONS.get(self._phase, "prepare your server")) from None

        self._phase = "creating the container"
        self.emit(*steps.asking())
        self.log.info("%s: creating container %s", self._log_name, name)
        self.container_name_in_state = name
        # The create runs on as a task of its own: when JupyterHub cancels start()
        # the request is still on its way to Zun, and what it makes must be found.
        create = asyncio.ensure_future(self._create(body, deadline))
        try:
            created = await asyncio.shield(create)
        except asyncio.CancelledError:
            self.log.warning("%s: start cancelled during the create of %s; it will be "
                             "removed", self._log_name, name)
            self._hand_over(name, create=create)
            raise
        except CloudError as e:
            if is_transient(e):
                # no clear answer: the container may still appear under its name
                self._hand_over(name, create=create)
            raise for_user(e, "create the server's container") from None
        self.container_id = created["uuid"]
        self._created_at = loop.time()
        self._phase = "waiting for the container to run"
        try:
            container = await self._wait_running(self.container_id, deadline)
        except asyncio.CancelledError:
            self._hand_over(name, uuid=self.container_id, by_name=False)
            self.container_id = None
            raise
        except TimeoutError as e:
            await self._cleanup_failed()
            raise spawn_error(
                f"The container did not reach Running within {self.start_timeout} s "
                f"(last status: {e}).",
                reason="timeout",
            ) from None
        except CloudError as e:
            await self._cleanup_failed()
            raise for_user(e, "start the server's container") from None
        if container.get("status") != "Running":
            self.emit(None, steps.failure(container))
            failure = objects.describe_failure(container)
            logs = await self._logs_tail()
            await self._cleanup_failed()
            raise spawn_error(
                f"The server's {failure}",
                reason="container-error",
                log_message=f"{failure}; last log lines:\n{last_lines(logs)}",
            )
        address = objects.container_address(container, self.network)
        try:
            address = await self.reachable_address(container, address)
        except CloudError as e:
            await self._cleanup_failed()
            raise for_user(e, "give the server a floating IP") from None
        url = f"http://{address}:{self.port}"
        if self.wait_for_answer:
            await self._wait_answer(url, deadline)
        else:
            self.log.info("%s: server at %s", self._log_name, url)
            self.emit(*steps.reachable())
        return url

    async def _wait_answer(self, url, deadline):
        """Wait until the server answers as JupyterHub will ask it (common/answering.py).

        The address is for the log only: the spawn page says what happens.
        """
        self._phase = "waiting for the server to answer"
        self.log.info("%s: server at %s; waiting for it to answer", self._log_name, url)
        self.emit(*steps.reachable())

        async def alive():
            container = await self._current()
            if container is None or container.get("status") in objects.STOPPED_STATES:
                raise ProcessLookupError((container or {}).get("status") or "Deleted")

        base_url = self.server.base_url if self.server else "/"
        try:
            await answering.wait_for_answer(
                answering.answer_url(url, base_url), deadline=deadline, alive=alive,
                check_every=self.answer_check_interval, interval=self.answer_interval)
        except asyncio.CancelledError:
            self._hand_over(self.container_name_in_state, uuid=self.container_id,
                            by_name=False)
            self.container_id = None
            raise
        except (TimeoutError, ProcessLookupError, CloudError) as e:
            logs, remedy = await self._logs_tail(), None
            await self._cleanup_failed()
            if isinstance(e, TimeoutError):
                message = (f"Your server did not answer within {self.start_timeout} s "
                           "of the start (the hub was still waiting for the server "
                           "to answer); try again in a few minutes.")
            elif not isinstance(e, ProcessLookupError):
                raise for_user(e, "check the server's container") from None
            elif hub := answering.unreachable_hub(logs):
                message, remedy = answering.stopped_without_hub(hub)
            else:
                message = f"Your server stopped while starting (it is {e.args[0]})."
            raise spawn_error(message, reason="timeout" if isinstance(e, TimeoutError)
                              else "container-error",
                              log_message=" ".join(filter(None, (message, remedy)))
                              + f" Last log lines:\n{last_lines(logs)}") from None
        self.emit(*steps.answering())

    async def _logs_tail(self):
        # enough to hold a failure's first line above its traceback
        try:
            return await self.zun.logs(self.container_id, tail=LOG_TAIL)
        except CloudError as e:
            return f"(no logs: {e})"

    async def _release_ip(self):
        """Release the server's floating IP; a failure does not stop the removal."""
        try:
            await self.release_floating_ip()
        except CloudError as e:
            # the IP keeps its description: the next start or stop releases it
            self.log.warning("Could not release the floating IP of %s: %s", self._log_name, e)

    async def _cleanup_failed(self):
        """Remove a container that failed to start (the home volume stays).

        Waits a moment only: the janitor finishes what Zun does not allow yet
        (a Creating container), and the user's message must not wait for it.
        """
        if not self.container_id:
            return
        await self._release_ip()
        job = self._hand_over(
            self.container_name_in_state or self.container_name,
            uuid=self.container_id, by_name=False,
        )
        self.container_id = None
        await self.janitor.tried(job, 1.0)

    def _hub_poller(self):
        poller = HubPoller.for_hub(
            self.zun, self.hub_id, self.hub_poll_interval,
            full_interval=self.hub_full_poll_interval, gc_freeze=self.hub_gc_freeze,
        )
        poller.places.add(self.place.name if self.places else "default")
        if self.cleanup_orphans:
            # this server's containers are never orphans, saved state or not
            reconciler = OrphanReconciler.attach(poller, self.orphan_grace_period)
            reconciler.spawners.add(self)
            if self.server_access == FLOATING_IP:
                reconciler.floating_ips = self.neutron
        return poller

    def hub_db_session(self):
        """The hub's database session (the one this server's row lives in)."""
        try:
            return sa_inspect(self.orm_spawner).session if self.orm_spawner else None
        except Exception:
            return None

    def owned_container_identifiers(self):
        """Uuids and names of containers this server owns or may be making."""
        owned = state_strings(self.get_state())
        if self.pending or self._spawn_pending:
            try:
                owned.add(self.container_name)
            except ValueError:
                pass
        return owned

    async def _current(self):
        """The container as Zun (or the hub-wide poller) sees it; None when gone."""
        if self.use_hub_poller:
            poller = self._hub_poller()
            # A restarted hub reattaches every server from one list, not a GET each.
            await poller.wait_first_load()
            verdict, container = poller.lookup(self.container_id, self._created_at)
            if verdict == LISTED:
                return container
            if verdict == GONE:
                return None
            if verdict == QUIET:
                return {"uuid": self.container_id, "status": "Running"}
        try:
            return await self.zun.get(self.container_id)
        except NotFound:
            return None

    def _exit_code(self, container):
        """poll()'s answer for a container as Zun shows it."""
        status = container.get("status")
        if status == "Unknown":
            loop = asyncio.get_running_loop()
            since = self._unknown_since
            if since is None:
                since = self._unknown_since = loop.time()
                self.log.warning("%s: Zun reports the container Unknown (Docker gave no state Zun knows)", self._log_name)
            if loop.time() - since < self.unknown_grace_period:
                return None
            self.log.warning(
                "%s has been Unknown for %s s; reporting it stopped",
                self._log_name, self.unknown_grace_period,
            )
            return 1
        self._unknown_since = None
        if status not in objects.ZUN_STATUSES and status not in self._unmapped_seen:
            self._unmapped_seen.add(status)
            self.log.warning("%s: Zun reports status %r, which this spawner does not "
                             "know; counting it as running", self._log_name, status)
        return objects.exit_status(container)

    async def poll(self):
        if self.to_remove:
            self._resume_removals()
        if not self.container_id:
            if self._ended is not None:
                return self._ended
            if self.server is not None:
                # The hub thinks a server is here but none was recorded: a start
                # that never finished (a hub killed mid-create, a cancelled
                # start) may have left one, and a floating IP.  No one's: remove them.
                if not self._spawn_pending:
                    await self._release_ip()
                await self._sweep()
            return 0
        try:
            container = await self._current()
            code = None if container is None else self._exit_code(container)
            if code is not None and self.delete_stopped_containers and self.use_hub_poller:
                # Ask Zun itself before deleting: a snapshot can predate a restart.
                container = await self.zun.get(self.container_id)
                code = self._exit_code(container)
        except NotFound:
            container = None
        except CloudError as e:
            # Never report a server as stopped because the API blipped.
            self.log.warning("Polling %s failed, assuming it runs: %s", self._log_name, e)
            return None
        if container is None:
            return 0
        if code is None or not self.delete_stopped_containers:
            return code
        # JupyterHub calls stop() only for a server poll() says is running:
        # remove the ended container here, or nobody will.
        self.log.info("%s ended (exit status %s); deleting its container %s",
                      self._log_name, code, self.container_id)
        await self._release_ip()
        job = self._hand_over(
            self.container_name_in_state or self.container_name,
            uuid=self.container_id, by_name=False,
        )
        self.container_id = None
        self._ended = code
        await self.janitor.tried(job, 10.0)
        if job.refused:
            self.log.warning(
                "%s: container not deleted yet (%s); the hub keeps trying",
                self._log_name, job.describe(),
            )
        return code

    async def stop(self, now=False):
        # before the container: its port (and so the IP's association) goes with it
        await self._release_ip()
        try:
            name = self.container_name_in_state or self.container_name
        except ValueError:
            name = None
        if name is None:
            self.container_id = None
            return
        # With no id recorded, the name finds what a start left.
        job = self._hand_over(name, uuid=self.container_id, by_name=not self.container_id)
        self.container_id = None
        if not await self.janitor.wait([job], self.delete_timeout):
            self.log.error(
                "Stopping %s: the container is not gone after %s s (%s). It stays in "
                "the server's state; the hub keeps deleting it in the background and "
                "before the next start.",
                self._log_name, self.delete_timeout, job.describe(),
            )
