"""Image name -> runtime directory map (``[local_driver] images``)."""

import json
import os

# A runtime directory's image metadata, as a registry image's config has it:
# {"Cmd": [...], "Entrypoint": [...]} (both optional).
METADATA_FILE = 'image.json'


class ImageMapError(ValueError):
    pass


def _normalise(name):
    """Drop Docker Hub's implicit prefixes so 'python' == 'docker.io/library/python'."""
    for prefix in ('docker.io/', 'index.docker.io/', 'registry-1.docker.io/'):
        if name.startswith(prefix):
            name = name[len(prefix):]
            if name.startswith('library/'):
                name = name[len('library/'):]
            break
    return name


def _split_tag(name):
    """('repo', 'tag' or None): a tag is after the last ':' past the last '/'."""
    slash = name.rfind('/')
    colon = name.rfind(':')
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, None


def parse_image_map(entries):
    """Parse ``image:runtime_dir`` entries (a list or a comma string).

    Each entry is split on its LAST colon, so image names may carry a
    registry port or a tag.  Returns ``{(repo, tag or None): runtime_dir}``.
    """
    if isinstance(entries, str):
        entries = entries.split(',')
    result = {}
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        image, sep, runtime_dir = entry.rpartition(':')
        if not sep or not image or not runtime_dir:
            raise ImageMapError('image map entry %r is not "image:runtime_dir"'
                                % entry)
        if not os.path.isabs(runtime_dir):
            raise ImageMapError('runtime dir of %r must be an absolute path'
                                % entry)
        repo, tag = _split_tag(_normalise(image.strip()))
        result[(repo, tag)] = runtime_dir.rstrip('/') or '/'
    return result


def lookup(image_map, repo, tag=None):
    """Runtime dir for ``repo[:tag]``, or None.  An exact tag wins over an
    untagged entry; *repo* may itself carry a tag when *tag* is None."""
    repo = _normalise(repo)
    if tag is None:
        repo, tag = _split_tag(repo)
    if (repo, tag) in image_map:
        return image_map[(repo, tag)]
    return image_map.get((repo, None))


def metadata(runtime_dir):
    """The image's config from ``<runtime_dir>/image.json`` ({} if none)."""
    try:
        with open(os.path.join(runtime_dir, METADATA_FILE)) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
