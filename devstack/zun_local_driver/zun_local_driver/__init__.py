"""The container runtime of the local Magnum cluster's kubelet stand-in
(magnum_local_driver): a container is a supervised local process in its own
mount, pid and UTS namespaces, limited by cgroup v1, with its own 127.x address
and its volumes as loop-mounted ext4 image files.  What is left of the
process-backed Zun driver the local cloud ran before its Docker path; it goes
with the stand-in.  See README.md.
"""
