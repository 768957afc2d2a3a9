from zun_local_driver import cgroups

MiB = 1024 * 1024


def test_memory_limits_follow_default_memory_swap():
    assert cgroups.memory_limits(None, -1) == (-1, -1)
    assert cgroups.memory_limits('256', -1) == (256 * MiB, -1)
    assert cgroups.memory_limits(256, 1024) == (256 * MiB, 1024 * MiB)
    # memory+swap can never be below memory
    assert cgroups.memory_limits(256, 100) == (256 * MiB, 256 * MiB)


def test_parse_memory():
    assert cgroups.parse_memory_mib('256') == 256
    assert cgroups.parse_memory_mib('256M') == 256
    assert cgroups.parse_memory_mib('1G') == 1024
    assert cgroups.parse_memory_mib(None) is None


def test_cpu_shares_is_a_weight_with_minimum_2():
    assert cgroups.cpu_shares(0.5) == 512
    assert cgroups.cpu_shares(2) == 2048
    assert cgroups.cpu_shares(0.001) == 2
    assert cgroups.cpu_shares(None) is None
