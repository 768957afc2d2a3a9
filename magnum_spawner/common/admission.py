"""Admission: a class that clicks Start together gets in at the pace the cloud can take.

Fifty servers starting at once on a cloud that can start four at a time all
start slowly, none in time, and each retry adds another.  So a hub lets at most
``concurrent_starts`` starts run at once; the others wait in arrival order and
the spawn page says how many students are starting before them.  A start holds
its place from its first cloud call until its server answers (the CPU-heavy
part: the server's own start-up), and gives it up however it ends - returned,
failed, or cancelled by JupyterHub's ``start_timeout``; a waiter that is
cancelled leaves the queue.

:class:`StartQueue` is the pure mechanism (one per hub process and ``hub_id``),
:class:`AdmissionMixin` the setting and the spawn page's words.
"""

import asyncio
import collections
import contextlib

from traitlets import Integer

from .host import Host

#: the spawn page's percent while a start waits for its turn
QUEUED = 2
#: how many recent starts tell how long a start takes now (the fewest that do)
RECENT, ENOUGH = 8, 3


class NoTurn(TimeoutError):
    """A start's deadline came while it waited for its turn (the phase is the message)."""


class _Ticket:
    __slots__ = ("admitted", "moved")

    def __init__(self):
        self.admitted = False
        self.moved = asyncio.Event()


class StartQueue:
    """At most ``limit`` holders at a time; the others wait first come, first served."""

    _queues = {}

    @classmethod
    def for_hub(cls, key):
        """The process's one queue for ``key`` (a hub id)."""
        queue = cls._queues.get(key)
        if queue is None:
            queue = cls._queues[key] = cls()
        return queue

    def __init__(self):
        #: starts holding a place now
        self.starting = 0
        #: the latest limit asked for; 0 or less: no limit
        self.limit = 0
        self._waiting = []
        #: seconds the latest starts that succeeded held their place
        self._held = collections.deque(maxlen=RECENT)

    def record(self, seconds):
        """A start that succeeded held its place this long."""
        self._held.append(seconds)

    def shortest_start(self):
        """The fastest of the latest successful starts (None until there are a few)."""
        return min(self._held) if len(self._held) >= ENOUGH else None

    @property
    def waiting(self):
        return len(self._waiting)

    def _free(self):
        return self.limit <= 0 or self.starting < self.limit

    async def enter(self, limit, told=None):
        """Wait for a place.  ``told(ahead)`` is called whenever the number of
        starts before this one changes (``ahead`` counts those starting now and
        those queued in front), first when the wait begins."""
        self.limit = limit
        if not self._waiting and self._free():
            self.starting += 1
            return
        ticket = _Ticket()
        self._waiting.append(ticket)
        shown = None
        try:
            while not ticket.admitted:
                ahead = self.starting + self._waiting.index(ticket)
                if told is not None and ahead != shown:
                    shown = ahead
                    told(ahead)
                ticket.moved.clear()
                await ticket.moved.wait()
        except BaseException:
            if ticket.admitted:
                # admitted as it was cancelled: the place goes to the next one
                self.leave()
            else:
                self._waiting.remove(ticket)
                self._wake()
            raise

    def leave(self):
        """Give a place back; the first waiter (if any) takes it."""
        self.starting -= 1
        self._wake()

    def _wake(self):
        while self._waiting and self._free():
            ticket = self._waiting.pop(0)
            ticket.admitted = True
            self.starting += 1
            ticket.moved.set()
        for ticket in self._waiting:  # each one's place in the queue moved
            ticket.moved.set()

    @contextlib.asynccontextmanager
    async def place(self, limit, told=None):
        """``async with queue.place(limit):`` - hold a place for the block."""
        await self.enter(limit, told)
        try:
            yield
        finally:
            self.leave()


def waiting_words(ahead):
    """What the spawn page says while a start waits for its turn."""
    who = "1 student is" if ahead == 1 else f"{ahead} students are"
    return f"{who} starting before you; your server starts in turn"


class AdmissionMixin(Host):
    """``concurrent_starts`` and :meth:`admitted`, which a spawner's start runs in."""

    concurrent_starts = Integer(
        4,
        config=True,
        help="""
        How many servers this hub starts at once.  Further starts wait in the
        order the students clicked, and their spawn page says "N students are
        starting before you"; each start holds its place from its first cloud
        call until its server answers, so the limit paces both the cloud's
        work (volumes, containers, image pulls) and the servers' own start-up,
        which on a busy host is CPU-bound (a JupyterLab server needs some 8 s of
        CPU to start).  0 turns the limit off.

        The default, 4, suits a single 2-core host (the local demo cloud).  On a
        real cloud, start with about one per free CPU core of the compute hosts
        that take new servers, at most what the cloud's APIs handle at once
        (each start makes a few Cinder and Zun calls per second), and raise it
        while the spawn times of a rush stay flat.  The wait in the queue
        counts towards :attr:`start_timeout`: set that to cover a rush, about
        ``students / concurrent_starts * seconds one start takes``.  A start
        whose turn comes with less of that time left than even the fastest of
        the latest starts took gives up at once with a sentence saying so, and
        its place goes to the next student.
        Example: ``c.ZunSpawner.concurrent_starts = 16``.
        """,
    )

    def start_queue(self):
        return StartQueue.for_hub(self.hub_id)

    @contextlib.asynccontextmanager
    async def admitted(self, deadline):
        """Run the block in this hub's start queue.

        ``deadline`` is an event-loop time; a wait that would pass it raises
        :class:`NoTurn` (its text names the phase), leaving the queue.
        """
        queue = self.start_queue()
        waited = []

        def told(ahead):
            waited.append(ahead)
            self._phase = f"waiting for its turn ({waiting_words(ahead)})"
            self.emit(QUEUED, waiting_words(ahead))

        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(queue.enter(self.concurrent_starts, told),
                                   max(deadline - loop.time(), 0))
        except asyncio.TimeoutError:
            raise NoTurn(self._phase) from None
        entered = loop.time()
        if waited:
            self.log.info("%s: its turn to start came after %d starts before it",
                          self._log_name, waited[0])
            # A turn that comes later than even the fastest start of late could
            # finish would only make a volume and a container for JupyterHub to
            # cancel, while a student behind, with time left, waits longer: on an
            # overloaded cloud that is how a queue turns into a timeout for all.
            fastest, left = queue.shortest_start(), deadline - entered
            if fastest is not None and left < fastest:
                queue.leave()
                self._phase = (f"waiting for its turn (it came with {max(left, 0):.0f} s "
                               f"left, and a start takes {fastest:.0f} s or more now)")
                raise NoTurn(self._phase)
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            queue.leave()
            if succeeded:
                queue.record(loop.time() - entered)

    #: what the start is doing (for a timeout's sentence); the spawner goes on
    _phase = "waiting for its turn"
