"""Under CI a test whose precondition is missing fails, saying which; elsewhere it
is skipped with the reason (tests/ci_skips.py, loaded by the root conftest.py)."""

import os
import pathlib
import subprocess
import sys
import textwrap

from .ci_skips import under_ci

REPO = pathlib.Path(__file__).resolve().parents[1]

SUITE = {
    "test_marks.py": """
        import pytest

        @pytest.mark.skipif(True, reason="needs the cgroup v1 memory hierarchy")
        def test_marked():
            pass

        @pytest.fixture
        def proxy():
            pytest.skip("configurable-http-proxy is not installed (make chp)")

        def test_in_a_fixture(proxy):
            pass

        @pytest.mark.xfail(reason="a known defect")
        def test_expected_to_fail():
            assert False

        def test_runs():
            pass
    """,
    "test_module.py": """
        import pytest

        pytest.importorskip("no_such_module_playwright")

        def test_never_collected():
            pass
    """,
}


def run_suite(tmp_path, ci):
    for name, text in SUITE.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        # (no Hypothesis in this suite: its plugin alone would be most of the run)
        [sys.executable, "-m", "pytest", "-p", "tests.ci_skips", "-p", "no:cacheprovider",
         "-p", "no:hypothesispytest",
         "--continue-on-collection-errors", "-rA", "-c", str(tmp_path / "pytest.ini"),
         "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


def test_under_ci_every_skip_is_a_failure_naming_its_precondition(tmp_path):
    out = run_suite(tmp_path, "true")
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    # a skip in setup (a mark, a fixture) or collection fails as an error there
    assert "1 passed, 1 xfailed, 3 errors in" in text, text
    for reason in ("needs the cgroup v1 memory hierarchy",
                   "configurable-http-proxy is not installed (make chp)",
                   "could not import 'no_such_module_playwright'"):
        assert f"would have been skipped: {reason}" in text, (reason, text)


def test_outside_ci_they_are_skipped_with_the_reason(tmp_path):
    out = run_suite(tmp_path, None)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "1 passed, 3 skipped, 1 xfailed" in text, text
    assert "needs the cgroup v1 memory hierarchy" in text


def test_ci_false_is_not_ci(monkeypatch):
    for value, meant in (("true", True), ("1", True), ("false", False), ("0", False),
                         ("", False)):
        monkeypatch.setenv("CI", value)
        assert under_ci() is meant, value


def test_every_suite_of_the_repository_loads_it(request):
    # the root conftest.py, the one every suite under the repository shares
    assert request.config.pluginmanager.has_plugin("tests.ci_skips")
    assert (REPO / "conftest.py").read_text().count('"tests.ci_skips"') == 1
