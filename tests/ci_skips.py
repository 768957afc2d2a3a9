"""Under CI, a skip is a failure.

A precondition that skips a test (not root, no cgroup v1 hierarchy, Playwright or
configurable-http-proxy missing, no cloud) would turn CI green while the test never
ran.  With ``CI`` set (``CI=true bash .ci/run``) such a test fails with a sentence
naming the precondition; outside CI it is still a skip with its reason.  Loaded for
every suite by the repository's root ``conftest.py``.
"""

import os

import pytest


def under_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _fail_the_skip(report):
    if not under_ci() or not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = (f"{report.nodeid}: under CI a skip is a failure, and this test "
                       f"would have been skipped: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_the_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_the_skip(outcome.get_result())
