"""A rush through a real hub: starts beyond ``concurrent_starts`` wait their turn
in order with words for the student, a second click joins the start that is
under way, a student who cancels while waiting leaves the queue
(``magnum_spawner/common/admission.py``; JupyterHub answers a start of a
pending server with 202 and cancels the pending start on a stop)."""

import re

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.localcloud


def steps(hub, user):
    """(line number, what the spawn page said) for ``user``, from the hub's log."""
    found = []
    for n, line in enumerate(hub.log_path.read_text(errors="replace").splitlines()):
        if f"user={user} " in line:
            phase = re.search(r"spawn phase=(\w+) ", line)
            step = re.search(r'step="([^"]*)"', line)
            if phase:
                found.append((n, phase.group(1), step.group(1) if step else None))
    return found


def test_a_rush_waits_in_order_a_second_click_joins_and_a_cancel_leaves(hub_factory):
    # slow_spawn_timeout (a tornado setting) 0.01: each click is answered 202 at once, so ben is still
    # waiting for his turn when he clicks again, however fast the machine
    hub = hub_factory("c.ZunSpawner.concurrent_starts = 1\n"
                      "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0.01}\n")
    first, second, third = "rush-ann", "rush-ben", "rush-cat"
    try:
        for user in (first, second, third):
            assert hub.request_start(user).status_code in (201, 202)
        # ben clicks again while his server waits: he joins his start
        assert hub.request_start(second).status_code == 202
        # cat gives up while waiting: JupyterHub cancels her start
        wait_for(lambda: any(s for _, p, s in steps(hub, third) if s and "before you" in s),
                 30, 0.2, "cat to be told she waits")
        r = hub.api("DELETE", f"/users/{third}/server")
        assert r.status_code in (202, 204), r.text
        for user in (first, second):
            wait_for(lambda user=user: (hub.server(user) or {}).get("ready"), 240, 1,
                     f"{user}'s server")
        wait_for(lambda: not (hub.server(third) or {}).get("pending"), 60, 1,
                 "cat's start to end")
        assert not (hub.server(third) or {}).get("ready")

        ann, ben, cat = steps(hub, first), steps(hub, second), steps(hub, third)
        said = [s for _, p, s in ben if p == "progress"]
        assert said[0] == "1 student is starting before you; your server starts in turn", said
        assert [s for _, p, s in cat if p == "progress"][0].startswith(
            "2 students are starting before you"), cat
        # ben's cloud work began only once ann's server answered
        ann_started = next(n for n, p, _ in ann if p == "started")
        ben_asks = next(n for n, p, s in ben if s == "Asking the cloud for a server")
        assert ben_asks > ann_started
        # one start each: the second click made no second one
        assert [p for _, p, _ in ben].count("begin") == 1
        assert [p for _, p, _ in ann].count("begin") == 1
        # cat never reached the cloud; ann and ben have one container each
        assert not [s for _, p, s in cat if s == "Asking the cloud for a server"]
        for user, count in ((first, 1), (second, 1), (third, 0)):
            assert len(hub.cloud.containers(**{"hub.jupyter.org/hub": hub.hub_id,
                                               "hub.jupyter.org/user": user})) == count
    except Exception:
        for user in (first, second, third):
            print(user, steps(hub, user))
        print(hub.log_tail(30))
        raise
