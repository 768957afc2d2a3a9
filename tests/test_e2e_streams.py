"""make e2e's split into a Zun, a Magnum and a tempest stream (tests/e2e/streams.py)."""

from tests.e2e import streams


def test_every_e2e_file_runs_in_exactly_one_stream():
    paths = {name: set(stream["paths"]()) for name, stream in streams.STREAMS.items()}
    files = set(streams.E2E.glob("test_*.py"))
    assert files <= set().union(*paths.values())
    for name, mine in paths.items():
        others = set().union(*(p for n, p in paths.items() if n != name))
        assert not mine & others, (name, mine & others)
    assert streams.E2E / "test_magnum_spawner_e2e.py" in paths["magnum"]
    assert streams.E2E / "test_browser_e2e.py" in paths["zun"]
    assert paths["tempest"] == {streams.E2E / "test_zun_tempest_e2e.py"}


def test_a_file_named_in_the_arguments_runs_alone_in_its_stream():
    chosen, rest = streams.split_args(
        ["tests/e2e/test_flavors_e2e.py", "-k", "share", "-x",
         "tests/e2e/test_magnum_spawner_e2e.py::test_node_port",
         "tests/e2e/test_zun_tempest_e2e.py"])
    assert chosen == {"zun": ["tests/e2e/test_flavors_e2e.py"],
                      "magnum": ["tests/e2e/test_magnum_spawner_e2e.py::test_node_port"],
                      "tempest": ["tests/e2e/test_zun_tempest_e2e.py"]}
    # a -k expression is not a path, even when it names one
    assert rest == ["-k", "share", "-x"]

