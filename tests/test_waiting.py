"""The one wait loop: it returns what the look found, or stops at the deadline."""

import time

import pytest

from magnum_spawner.common.waiting import wait_until


async def test_returns_the_first_answer_that_is_not_none():
    answers = iter([None, None, "Running"])
    looks = []

    async def look():
        looks.append(time.monotonic())
        return next(answers)

    found = await wait_until(look, deadline=time.monotonic() + 5, interval=0.01)
    assert found == "Running" and len(looks) == 3


@pytest.fixture
def sleeps(monkeypatch):
    """The pauses asked for (no real sleeping), the clock moving by each."""
    asked = []
    now = [1000.0]

    async def sleep(seconds):
        asked.append(seconds)
        now[0] += seconds

    monkeypatch.setattr("magnum_spawner.common.waiting.asyncio.sleep", sleep)
    monkeypatch.setattr("magnum_spawner.common.waiting.time.monotonic", lambda: now[0])
    return asked


async def test_gives_up_instead_of_a_look_past_the_deadline(sleeps):
    looks = 0

    async def look():
        nonlocal looks
        looks += 1

    with pytest.raises(TimeoutError):
        await wait_until(look, deadline=1000.25, interval=0.1)
    assert looks == 3  # at 0, 0.1 and 0.2 s; a fourth would come after 0.25 s
    assert sleeps == [0.1, 0.1]


async def test_the_interval_grows_up_to_its_cap(sleeps):
    answers = iter([None, None, None, None, "done"])

    async def look():
        return next(answers)

    await wait_until(look, deadline=2000, interval=1, backoff=2, max_interval=3)
    assert sleeps == [1, 2, 3, 3]


async def test_a_look_may_stop_the_wait_by_raising():
    async def look():
        raise ValueError("volume in error")

    with pytest.raises(ValueError, match="volume in error"):
        await wait_until(look, deadline=time.monotonic() + 5, interval=0.01)
