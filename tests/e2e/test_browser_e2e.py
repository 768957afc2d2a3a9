"""A student's visit in a real browser: headless Chromium (Debian's ``chromium``)
driven by Playwright for Python, against a real hub on the local cloud.

Log in, choose the "small" flavor on the options form, watch the progress
page reach the server (in words, without the server's internal address), run a
notebook cell that prints the container's memory limit as the container sees
it and see the status bar's memory use against that limit
(jupyter-resource-usage) with no "Jupyter news?" prompt, stop the server from
the hub's home page.
Each step leaves a screenshot under ``.cache/browser/<run>/``; the test output
names them.  Playwright's own browser download does not work without the
internet: the Makefile installs ``chromium`` with apt and the test launches it
by path (``BROWSER_EXECUTABLE``, default /usr/bin/chromium; the ``browser_page``
fixture is in conftest.py).  The same visit runs once on the Magnum path, on
``make demo BACKEND=magnum``'s configuration (test_magnum_spawner_e2e.py).
"""

import json
import re

import pytest

from .conftest import wait_for
from .test_home_volumes_e2e import cleanup

pytestmark = pytest.mark.localcloud

PASSWORD = "browser-test-password"
USER = "browser-bea"
SMALL_MIB = 1024

#: The cell the student runs: the memory limit the container sees.
CELL = ("print('limit', int(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read())"
        " // 2**20, 'MiB')")


def test_a_student_logs_in_picks_small_runs_a_cell_and_stops(hub_factory, browser_page):
    hub = hub_factory(f"c.SharedPasswordAuthenticator.user_password = {PASSWORD!r}\n")
    try:
        visit(hub, browser_page, lambda: not hub.cloud.containers(
            **{"hub.jupyter.org/hub": hub.hub_id}), "the container to be deleted")
    finally:
        cleanup(hub, USER)


def visit(hub, page, server_gone, gone_what):
    """USER's visit through ``page`` to ``hub`` (SharedPasswordAuthenticator with
    PASSWORD, the default flavors): log in, choose "small", follow the progress page
    to the server, run a cell in JupyterLab, stop from the home page and wait for
    ``server_gone()``.  Returns the progress page's messages."""
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.shot("login")
        page.click("input[type=submit], button[type=submit]")

        # The options form: choose a flavor, start.
        page.wait_for_selector("input[type=radio][value=small]")
        page.check("input[type=radio][value=small]")
        page.shot("options-form-small-chosen")
        page.click("#spawn_form input[type=submit], #spawn_form button[type=submit]")

        # The progress page shows the cloud's steps, then goes to the server.
        page.wait_for_url(re.compile(r"/hub/spawn-pending/"), timeout=30_000)
        page.wait_for_selector("#progress-message", state="attached")
        wait_for(lambda: page.inner_text("#progress-message").strip(), 30, 0.2,
                 "a first progress message")
        page.shot("progress")
        seen = set()

        def arrived():
            if re.search(rf"/user/{USER}/", page.url):
                return True
            try:  # every event so far, as the page's log lists them (folded: text, not
                # rendered text, which is empty while the log is closed)
                seen.update(e.strip() for e in
                            page.locator(".progress-log-event").all_text_contents())
            except Exception:  # the page went on to the server meanwhile
                pass
            return False

        wait_for(arrived, 180, 0.2, "the server")
        # what the student reads says what happens, never where
        assert seen, "no progress event seen"
        assert not [m for m in seen if re.search(r"\b(127|10|172|192)\.\d+\.\d+\.\d+", m)], seen

        # A notebook with the cell, written through the server's API with the
        # browser's own cookies, then run in JupyterLab.
        base = f"{hub.url}/user/{USER}"
        page.goto(f"{base}/lab")
        page.wait_for_selector(".jp-LauncherCard, .jp-Launcher", timeout=120_000)
        xsrf = next((c["value"] for c in page.context.cookies() if c["name"] == "_xsrf"), "")
        notebook = {
            "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                       "outputs": [], "source": CELL}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5,
        }
        r = page.request.put(f"{base}/api/contents/memory.ipynb",
                             headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"},
                             data=json.dumps({"type": "notebook", "content": notebook}))
        assert r.ok, r.text()
        page.goto(f"{base}/lab/tree/memory.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=120_000)

        def kernel_idle():
            r = page.request.get(f"{base}/api/sessions")
            return r.ok and any(s["path"].endswith("memory.ipynb")
                                and s["kernel"]["execution_state"] == "idle"
                                for s in r.json())

        wait_for(kernel_idle, 120, 0.5, "the notebook's kernel")
        page.click(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")
        output = page.wait_for_selector(".jp-OutputArea-output", timeout=60_000)
        wait_for(lambda: "MiB" in output.inner_text(), 30, 0.2, "the cell's output")
        page.shot("notebook-cell-memory-limit")
        assert output.inner_text().split() == ["limit", str(SMALL_MIB), "MiB"]

        # The status bar shows the memory used against the flavor's limit
        # (jupyter-resource-usage reads MEM_LIMIT, which JupyterHub sets).
        memory = page.locator(".jp-StatusBar-Widget", has_text="Mem:").first
        wait_for(lambda: re.search(rf"Mem: [\d.]+ / {SMALL_MIB}(\.0+)? MB", memory.inner_text()),
                 60, 0.5, "the status bar's memory use against the limit")
        r = page.request.get(f"{base}/api/metrics/v1")
        assert r.ok and r.json()["limits"]["memory"]["rss"] == SMALL_MIB * 2**20, r.text()
        # No "get notified about official Jupyter news?" prompt: off in the image.
        r = page.request.get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification")
        # (the image's overrides.json becomes the setting's default)
        fetch_news = r.json()["schema"]["properties"]["fetchNews"] if r.ok else r.text()
        assert fetch_news["default"] == "false", fetch_news
        assert not page.locator(".Toastify__toast", has_text="news").count()

        # Stop from the hub's home page.
        page.goto(f"{hub.url}/hub/home")
        page.wait_for_selector("#stop")
        page.shot("home-running")
        page.click("#stop")
        # The page hides the stop button once the hub has stopped the server.
        page.wait_for_selector("#stop", state="hidden", timeout=120_000)
        # (the stop done, not only begun: a pod's deletion waits for its kubelet)
        wait_for(lambda: not any((hub.server(USER) or {}).get(k) for k in ("ready", "pending")),
                 120, 1, "the stop")
        page.reload()
        page.wait_for_selector("#start")
        page.shot("home-stopped")
        assert "Start My Server" in page.inner_text("#start")
        wait_for(server_gone, 60, 1, gone_what)
    except Exception:
        page.shot("failure")
        raise
    return seen

