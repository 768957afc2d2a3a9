"""What every spawner of this package shares (ZunSpawner now, MagnumSpawner next).

- ``cloud``: credentials and the per-cloud context (session, clients, caches);
- ``errors``: typed cloud errors and the sentences users see;
- ``names``: names and labels of what the hub makes;
- ``catalog``, ``choice``, ``options_form``, ``nova``, ``flavors``: what a user
  may pick (flavor, image) and the pick itself;
- ``waiting``: the one wait-until-done loop;
- ``home``: a home's size and deletion, the same on both paths;
- ``host``: what the shared spawner parts need from their spawner.
"""
