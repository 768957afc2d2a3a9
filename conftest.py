"""Every test run of the repository (unit, e2e, the local drivers' suites)."""

pytest_plugins = ["tests.ci_skips"]
