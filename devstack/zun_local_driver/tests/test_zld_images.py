import pytest

from zun_local_driver import images


def test_split_on_last_colon():
    m = images.parse_image_map(
        'quay.io/jupyter/base-notebook:/x/venvs/notebook,'
        'localhost:5000/team/img:v2:/opt/img-v2')
    assert images.lookup(m, 'quay.io/jupyter/base-notebook', 'latest') == \
        '/x/venvs/notebook'
    assert images.lookup(m, 'localhost:5000/team/img', 'v2') == '/opt/img-v2'
    assert images.lookup(m, 'localhost:5000/team/img', 'v1') is None


def test_untagged_entry_matches_any_tag_and_exact_tag_wins():
    m = images.parse_image_map(['python:/opt/py', 'python:3.11:/opt/py311'])
    assert images.lookup(m, 'python', '3.12') == '/opt/py'
    assert images.lookup(m, 'python', '3.11') == '/opt/py311'
    assert images.lookup(m, 'python:3.11') == '/opt/py311'


def test_docker_hub_prefixes_are_equivalent():
    m = images.parse_image_map('jupyter/base-notebook:/v,python:/p')
    assert images.lookup(m, 'docker.io/jupyter/base-notebook', 'latest') == '/v'
    assert images.lookup(m, 'docker.io/library/python', 'latest') == '/p'


def test_unknown_image():
    m = images.parse_image_map('a:/x')
    assert images.lookup(m, 'b', 'latest') is None


@pytest.mark.parametrize('bad', ['no-colon', 'img:relative/dir', ':/x'])
def test_bad_entries(bad):
    with pytest.raises(images.ImageMapError):
        images.parse_image_map(bad)


def test_blank_entries_ignored():
    assert images.parse_image_map(' , ') == {}
