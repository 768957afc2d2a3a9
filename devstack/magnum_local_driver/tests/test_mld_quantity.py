"""Claims' storage requests as the Cinder CSI stand-in sizes their volumes."""
import pytest

import mld_testing  # noqa: F401  (sys.path)
from magnum_local_driver import quantity


@pytest.mark.parametrize('text, value', [
    ('64Mi', 64 * 2 ** 20), ('1Gi', 2 ** 30), ('1G', 1e9), ('500m', 0.5),
    ('2', 2.0), ('129e6', 129e6), ('1.5Gi', 1.5 * 2 ** 30), ('100k', 1e5)])
def test_quantities(text, value):
    assert quantity.parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize('bad', ['', 'Mi', '1Zi', 'ten', '1 Gi'])
def test_bad_quantity_is_refused(bad):
    with pytest.raises(ValueError):
        quantity.parse_quantity(bad)


def test_claim_sizes_are_whole_gib_rounded_up():
    assert quantity.size_gib('1Gi') == 1
    assert quantity.size_gib('500Mi') == 1
    assert quantity.size_gib('1.1Gi') == 2
    assert quantity.size_gib('2G') == 2  # 1.86 GiB
