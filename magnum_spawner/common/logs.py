"""The cloud libraries' warnings in the hub's log, in the hub's format.

keystoneauth, openstacksdk and this package's own modules log through Python's
``logging``; JupyterHub's handler sits on its application logger only, which
does not pass records up.  Without a handler of their own their warnings reach
stderr through logging's last resort, bare ("Failure: Unable to establish
connection ...", no time, no level).  :func:`adopt_library_logs` gives them the
hub's handlers, once per process.  Their level stays at WARNING unless the
operator set one: keystoneauth's DEBUG request log would print request bodies.
"""

import logging

#: the loggers that take the hub's handlers (keystoneauth1 logs as "keystoneauth")
LIBRARIES = ("keystoneauth", "keystoneauth1", "openstack", "magnum_spawner")


def adopt_library_logs(hub_log):
    """Send the libraries' records to ``hub_log``'s handlers (no-op without any)."""
    handlers = _real(getattr(hub_log, "handlers", None) or ())
    if not handlers:
        return
    for name in LIBRARIES:
        library = logging.getLogger(name)
        if _real(library.handlers):  # the operator's logging configuration, or done already
            continue
        for handler in handlers:
            library.addHandler(handler)
        library.propagate = False
        if library.level == logging.NOTSET:
            library.setLevel(logging.WARNING if name != "magnum_spawner"
                             else hub_log.getEffectiveLevel())


def _real(handlers):
    """Handlers that write somewhere (openstacksdk installs a NullHandler)."""
    return [h for h in handlers if not isinstance(h, logging.NullHandler)]
