"""A process-backed container driver for upstream zun-compute.

A Zun container becomes a local process in its own mount, pid and UTS
namespaces, limited by cgroup v1, with its own 127.x address and its Cinder
volumes as loop-mounted ext4 image files.  See README.md.
"""
