"""The spawn page's own steps: what a start says, kept for every page that listens.

JupyterHub reads a spawner's ``progress()`` once for each spawn page that is
open (and again when one is reloaded) while the start runs.  :class:`SpawnPage`
keeps the start's steps in order (:meth:`emit`, a percent that never goes
back), and :meth:`page_steps` gives each reader all of them, then each new one
as it comes, until the start is over.  The Zun path's steps are all its own;
the Magnum path adds the start queue's words to its pod's events.
"""

import asyncio

from .host import Host


class SpawnPage(Host):
    def __init__(self, **kwargs):
        # before the rest: KubeSpawner's __init__ may raise (no kubeconfig yet)
        self.new_page()
        #: set (and replaced) at each new step
        self._new_step = None
        super().__init__(**kwargs)

    def new_page(self):
        """Forget the previous start's steps (start() calls it first)."""
        #: the current start's steps, ``{"progress": percent, "message": words}``
        self._events = []

    def emit(self, progress, message):
        """One step for the spawn page (said once); its percent never goes back."""
        last = self._events[-1] if self._events else {"progress": 0, "message": None}
        if message == last["message"]:
            return
        progress = last["progress"] if progress is None else max(progress, last["progress"])
        self._events.append({"progress": progress, "message": message})
        self.log_step(progress, message)
        if self._new_step is not None:
            self._new_step.set()
        self._new_step = asyncio.Event()

    def log_step(self, progress, message):
        """The hub's log line for a step."""
        super().emit(progress, message)

    async def page_steps(self):
        """Every step of the current start, as JupyterHub's ``progress()`` gives them."""
        sent = 0
        while True:
            while sent < len(self._events):
                yield self._events[sent]
                sent += 1
            if not self._spawn_pending:
                return
            if self._new_step is None:
                self._new_step = asyncio.Event()
            try:
                # a second look each second: a start may end without a step
                await asyncio.wait_for(self._new_step.wait(), 1)
            except asyncio.TimeoutError:
                pass

    progress = page_steps
