from tests.unit.fake_dist import fake_dist  # noqa: F401  (a fixture)
