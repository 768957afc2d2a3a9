"""The Zun path: each single-user server is a Zun container with a Cinder home.

- ``spawner``: ZunSpawner, orchestration only;
- ``client``: the Zun REST adapter; ``poller``: the hub-wide poll loop;
  ``orphans``: clean-up of containers no server owns;
- ``objects``: pure builders of Zun and Cinder request bodies, readers of answers;
- ``settings``: ZunHost, what every part builds on (settings, the container's
  identity, the Zun client); ``removals``: containers that must go, go
  (``janitor``: the hub-wide deleter);
- ``cinder``: the Cinder client; ``home_settings``: a home's traits and names;
  ``home_volumes``: find/create/grow/delete a home;
- ``neutron``: the floating IP client; ``reachability``: fixed or floating IPs;
- ``progress``: the spawn page's words.
"""
