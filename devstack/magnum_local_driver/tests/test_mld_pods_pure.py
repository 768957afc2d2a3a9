"""Pod spec -> container spec translation of the kubelet stand-in (pure)."""
import base64

import pytest

import mld_testing  # noqa: F401  (sys.path)
from magnum_local_driver import pods


@pytest.mark.parametrize('text, value', [
    ('64Mi', 64 * 2 ** 20), ('1Gi', 2 ** 30), ('1G', 1e9), ('500m', 0.5),
    ('2', 2.0), ('129e6', 129e6), ('1.5Gi', 1.5 * 2 ** 30), ('100k', 1e5)])
def test_quantities(text, value):
    assert pods.parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize('bad', ['', 'Mi', '1Zi', 'ten', '1 Gi'])
def test_bad_quantity_is_refused(bad):
    with pytest.raises(ValueError):
        pods.parse_quantity(bad)


def test_memory_limit_rounds_up_to_whole_mib_and_ignores_requests():
    assert pods.memory_limit_mib({'limits': {'memory': '64Mi'}}) == 64
    assert pods.memory_limit_mib({'limits': {'memory': '100M'}}) == 96  # 95.37 up
    assert pods.memory_limit_mib({'requests': {'memory': '1Gi'}}) is None
    assert pods.memory_limit_mib(None) is None


def test_cpu_weight_from_request_else_limit():
    assert pods.cpu_weight({'requests': {'cpu': '250m'},
                            'limits': {'cpu': '2'}}) == 0.25
    assert pods.cpu_weight({'limits': {'cpu': '1500m'}}) == 1.5
    assert pods.cpu_weight({}) is None


def test_claim_sizes_are_whole_gib_rounded_up():
    assert pods.size_gib('1Gi') == 1
    assert pods.size_gib('500Mi') == 1
    assert pods.size_gib('1.1Gi') == 2
    assert pods.size_gib('2G') == 2  # 1.86 GiB


def test_command_replaces_entrypoint_and_args_replace_cmd():
    image = {'Entrypoint': ['tini', '--'], 'Cmd': ['start-notebook.py']}
    assert pods.container_argv({}, image) == ['tini', '--', 'start-notebook.py']
    assert pods.container_argv({'args': ['jupyterhub-singleuser']}, image) == \
        ['tini', '--', 'jupyterhub-singleuser']
    assert pods.container_argv({'command': ['sh', '-c'], 'args': ['exit 3']},
                               image) == ['sh', '-c', 'exit 3']
    assert pods.container_argv({'command': ['true']}, image) == ['true']
    assert pods.container_argv({}, None) == []


def test_env_values_references_fields_and_secrets():
    pod = {'metadata': {'name': 'p1', 'namespace': 'ns', 'uid': 'u1'},
           'spec': {'nodeName': 'n0', 'serviceAccountName': 'default'}}
    secret = {'token': base64.b64encode(b's3cret').decode()}
    config = {'mode': 'lab'}

    def lookup(kind, namespace, name):
        assert namespace == 'ns'
        return {('secret', 'hub'): secret, ('configmap', 'cfg'): config}.get(
            (kind, name))

    container = {'env': [
        {'name': 'A', 'value': 'x'},
        {'name': 'B', 'value': '$(A)-y-$(MISSING)'},
        {'name': 'IP', 'valueFrom': {'fieldRef': {'fieldPath': 'status.podIP'}}},
        {'name': 'NAME', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}},
        {'name': 'TOKEN', 'valueFrom': {'secretKeyRef': {'name': 'hub', 'key': 'token'}}},
        {'name': 'MODE', 'valueFrom': {'configMapKeyRef': {'name': 'cfg', 'key': 'mode'}}},
        {'name': 'GONE', 'valueFrom': {'secretKeyRef': {'name': 'nope', 'key': 'k'}}},
    ]}
    env = pods.container_env(container, pod, '127.20.0.7', '127.0.0.1', lookup)
    assert env == {'A': 'x', 'B': 'x-y-$(MISSING)', 'IP': '127.20.0.7',
                   'NAME': 'p1', 'TOKEN': 's3cret', 'MODE': 'lab'}


@pytest.mark.parametrize('details, reason', [
    ({'exit_code': 137, 'oom': True, 'signal': 9}, 'OOMKilled'),
    ({'exit_code': 0}, 'Completed'),
    ({'exit_code': 7}, 'Error'),
    ({'exit_code': 137, 'signal': 9}, 'Error'),
    ({'exit_code': 127, 'error': 'exec: "nope": executable file not found'},
     'ContainerCannotRun'),
])
def test_exit_reasons_as_the_kubelet_reports_them(details, reason):
    assert pods.exit_reason(details)[0] == reason


def test_container_ids_are_stable_per_pod_and_name():
    a = pods.container_id('uid-1', 'main')
    assert a == pods.container_id('uid-1', 'main')
    assert a != pods.container_id('uid-1', 'sidecar')
    assert a != pods.container_id('uid-2', 'main')


def test_rfc3339_drops_the_fraction():
    assert pods.rfc3339('2026-12-01T11:49:08.462620Z') == '2026-12-01T11:49:08Z'
    assert pods.rfc3339(None) is None
