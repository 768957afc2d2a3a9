"""keystone-manage db_sync, fernet_setup, credential_setup and bootstrap in one
process (each keystone-manage run spends ~3.5 s importing keystone).

Usage: keystone_setup.py KEYSTONE_CONF  (admin password from
LOCAL_CLOUD_ADMIN_PASSWORD).  Run with the keystone venv's python.
"""

import os
import sys

from keystone.cmd import cli

URL = "http://127.0.0.1:5000/v3/"


def main():
    conf = sys.argv[1]
    owner = ["--keystone-user", "root", "--keystone-group", "root"]
    steps = [
        ["db_sync"],
        ["fernet_setup"] + owner,
        ["credential_setup"] + owner,
        ["bootstrap",
         "--bootstrap-password", os.environ["LOCAL_CLOUD_ADMIN_PASSWORD"],
         "--bootstrap-username", "admin",
         "--bootstrap-project-name", "admin",
         "--bootstrap-role-name", "admin",
         "--bootstrap-service-name", "keystone",
         "--bootstrap-region-id", "RegionOne",
         "--bootstrap-admin-url", URL,
         "--bootstrap-internal-url", URL,
         "--bootstrap-public-url", URL],
    ]
    for step in steps:
        print("keystone-manage %s" % step[0], file=sys.stderr, flush=True)
        cli.main(argv=["keystone-manage", "--config-file", conf] + step)
        cli.CONF.clear()  # forget the parsed command line for the next step


if __name__ == "__main__":
    main()
