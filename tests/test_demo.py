"""`make demo-down` as an operator uses it (etc/demo.py): it returns only once
`make demo` has stopped the hub (whose clean-up stops every server, and needs
the cloud), so the cloud is taken down after that, never from under it.
Real processes stand in for `make demo` and the hub; no cloud."""

import importlib.util
import pathlib
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).parents[1]

#: `make demo` (its file is named demo.py): on SIGTERM it stops its hub's
#: servers, which takes a while, then exits
SLOW_DEMO = """
import pathlib, signal, sys, time
def stop(signum, frame):
    time.sleep(1.5)  # the hub stops every server (each waits for its delete)
    pathlib.Path(sys.argv[1]).write_text("servers stopped")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
pathlib.Path(sys.argv[2]).write_text("up")
while True:
    time.sleep(0.1)
"""


def load_demo(monkeypatch, state):
    monkeypatch.setenv("LOCAL_HUB_DIR", str(state))
    spec = importlib.util.spec_from_file_location("demo_under_test", REPO / "etc" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


@pytest.mark.slow
def test_demo_down_returns_only_once_make_demo_has_stopped_the_hub(tmp_path, monkeypatch):
    state = tmp_path / "demo"
    state.mkdir()
    script = tmp_path / "demo.py"
    script.write_text(SLOW_DEMO)
    stopped, up = tmp_path / "stopped", tmp_path / "up"
    running = subprocess.Popen([sys.executable, str(script), str(stopped), str(up)])
    try:
        while not up.exists():
            time.sleep(0.05)
        (state / "demo.pid").write_text(str(running.pid))
        demo = load_demo(monkeypatch, state)
        demo.down()
        # down() returned: the servers were stopped and `make demo` is gone
        assert stopped.read_text() == "servers stopped"
        assert running.poll() is not None or not demo.alive(running.pid)
    finally:
        if running.poll() is None:
            running.send_signal(signal.SIGKILL)
        running.wait()
