"""The cloud libraries' warnings reach the hub's log through the hub's formatter."""

import io
import logging

import pytest

from magnum_spawner.common import logs

from .helpers import make_spawner


@pytest.fixture
def hub_log():
    """A logger like JupyterHub's: its own formatted handler, no propagation."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("[%(levelname)1.1s %(name)s] %(message)s"))
    log = logging.getLogger("FakeJupyterHub")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate,
                    logging.getLogger(name).level) for name in logs.LIBRARIES}
    for name in logs.LIBRARIES:  # as in a fresh hub process, whatever ran before
        library = logging.getLogger(name)
        library.handlers[:] = [h for h in library.handlers
                               if isinstance(h, logging.NullHandler)]
        library.propagate, library.level = True, logging.NOTSET
    yield log, out
    log.removeHandler(handler)
    for name, (handlers, propagate, level) in saved.items():
        library = logging.getLogger(name)
        library.handlers[:] = handlers
        library.propagate, library.level = propagate, level


def test_keystoneauth_and_openstacksdk_warnings_are_formatted_by_the_hub(hub_log):
    log, out = hub_log
    spawner = make_spawner()
    spawner.log = log
    spawner.cloud_context()
    logging.getLogger("keystoneauth.session").warning(
        "Failure: Unable to establish connection to http://127.0.0.1:9517")
    logging.getLogger("openstack.config").warning("a cloud config warning")
    logging.getLogger("keystoneauth.session").debug("REQ: curl -g -i -X POST ... secret body")
    lines = [line for line in out.getvalue().splitlines()
             if not line.startswith("[I magnum_spawner")]  # the spawner's own lines
    assert lines == [
        "[W keystoneauth.session] Failure: Unable to establish connection to "
        "http://127.0.0.1:9517",
        "[W openstack.config] a cloud config warning",
    ]


def test_an_operators_own_logging_configuration_is_left_alone(hub_log):
    log, out = hub_log
    mine = logging.StreamHandler(io.StringIO())
    logging.getLogger("openstack").addHandler(mine)
    logs.adopt_library_logs(log)
    assert mine in logging.getLogger("openstack").handlers
    assert log.handlers[0] not in logging.getLogger("openstack").handlers
    assert logging.getLogger("openstack").propagate
