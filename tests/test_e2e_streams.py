"""make e2e's split into a Zun and a Magnum stream (tests/e2e/streams.py)."""

from tests.e2e import streams


def test_every_e2e_file_runs_in_exactly_one_stream():
    zun, magnum = set(streams.zun_paths()), set(streams.magnum_paths())
    files = set(streams.E2E.glob("test_*.py"))
    assert files <= zun | magnum
    assert not zun & magnum
    assert streams.E2E / "test_magnum_spawner_e2e.py" in magnum
    assert streams.E2E / "test_browser_e2e.py" in zun


def test_a_file_named_in_the_arguments_runs_alone_in_its_stream():
    chosen, rest = streams.split_args(
        ["tests/e2e/test_flavors_e2e.py", "-k", "share", "-x",
         "tests/e2e/test_magnum_spawner_e2e.py::test_node_port"])
    assert chosen == {"zun": ["tests/e2e/test_flavors_e2e.py"],
                      "magnum": ["tests/e2e/test_magnum_spawner_e2e.py::test_node_port"]}
    # a -k expression is not a path, even when it names one
    assert rest == ["-k", "share", "-x"]
