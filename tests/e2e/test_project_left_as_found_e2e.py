"""The suite leaves the cloud project as it found it.

Runs after every other e2e test (``conftest.RUN_LAST``) and compares the
project's inventory, read through python-zunclient and openstacksdk, with the
one taken before the first test: no container, home volume, attachment or
floating IP may be left behind by any hub, spawner or failed start.

The session hub's shutdown deletes only what is expected to remain once its
servers are stopped (each user's one home volume): whatever its spawner left is
still in the cloud when the inventory is read.  The other hubs and spawners are
checked by their own fixtures' teardown, which fails the test that leaked.
"""

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.localcloud


def test_the_suite_leaves_the_project_as_it_found_it(hub, local_cloud, project_at_start):
    # the session hub is the only one still running: stop it and its servers,
    # as its own teardown would, leaving what they should not have left (the
    # fixture's teardown deletes that afterwards)
    leaks = hub.shutdown(remove_leaks=False)
    seen = {}

    def same():
        seen["now"] = local_cloud.inventory()
        return seen["now"] == project_at_start

    try:
        # Cinder deletes asynchronously: give it a moment to finish
        wait_for(same, 60, 2, "the project to be as it was")
    except AssertionError:
        now = seen["now"]
        extra = {
            kind: {k: v for k, v in (now[kind] or {}).items()
                   if (project_at_start[kind] or {}).get(k) != v}
            for kind in now
        }
        missing = {
            kind: sorted(set(project_at_start[kind] or {}) - set(now[kind] or {}))
            for kind in now
        }
        raise AssertionError(f"left behind or changed: {extra}; gone: {missing}; "
                             f"the session hub left: {leaks}") from None
    assert not leaks, f"the session hub left, after its servers stopped: {leaks}"
