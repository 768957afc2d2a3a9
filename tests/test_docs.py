"""docs/configuration.md is what docs/gen_config_reference.py makes from the code."""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "gen_config_reference", REPO / "docs" / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_is_up_to_date():
    gen = load_generator()
    current = (REPO / "docs" / "configuration.md").read_text()
    assert current == gen.render(), (
        "docs/configuration.md is out of date with the traits' help text: run `make docs`")


def test_every_option_of_the_spawner_is_documented_with_its_help():
    gen = load_generator()
    text = gen.render()
    for cls, items in gen.traits().items():
        for name, trait, spawners in items:
            assert all(f"`c.{sp}.{name}`" in text for sp in spawners)
            assert trait.help and trait.help.strip(), f"{cls}.{name} has no help text"


def test_every_spawn_failure_reason_has_a_troubleshooting_row():
    # Each reason a start can fail with (SpawnException(reason=...)) is what the
    # operator sees in metrics and logs: the table must say what to do about it.
    import re

    table = (REPO / "docs" / "troubleshooting.md").read_text()
    reasons = set()
    for path in (REPO / "magnum_spawner").rglob("*.py"):
        text = path.read_text()
        found = set(re.findall(r'reason="([a-z-]+)"', text))
        if 'reason=f"home-volume-{reason}"' in text:  # volumes.py's _volume_error
            found = {f"home-volume-{r}" for r in found}
        reasons |= found
    assert reasons
    missing = sorted(r for r in reasons if f"`{r}`" not in table)
    assert not missing, f"docs/troubleshooting.md has no row for: {missing}"
