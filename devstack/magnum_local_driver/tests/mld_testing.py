"""Shared helpers of the magnum_local_driver tests (a unique module name, so
it cannot clash with another suite's helpers on sys.path)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEVSTACK = os.path.dirname(os.path.dirname(HERE))
# The driver package, uninstalled.
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))
