"""Kubernetes quantities ('64Mi', '1G', '500m') as the Cinder CSI stand-in
reads a claim's storage request."""

import math
import re

GiB = 1024 ** 3

_QUANTITY = re.compile(r'^([0-9.]+(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$')
_SUFFIX = {'': 1, 'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'P': 1e15,
           'E': 1e18, 'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30,
           'Ti': 2 ** 40, 'Pi': 2 ** 50, 'Ei': 2 ** 60, 'm': 1e-3}


def parse_quantity(text):
    """A Kubernetes quantity ('64Mi', '1G', '500m', '1.5', '129e6') as a
    float in base units."""
    m = _QUANTITY.match(str(text).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError('not a Kubernetes quantity: %r' % text)
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def size_gib(quantity):
    """A claim's storage request in whole GiB (Cinder's unit), rounded up."""
    return max(1, int(math.ceil(parse_quantity(quantity) / GiB)))
