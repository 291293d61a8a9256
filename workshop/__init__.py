"""The workshop: every failure mode happens in front of the class, beside its fix, and a data audit keeps score.

Never installed in production (`WORKSHOP_ENABLED=true` turns it on; production settings refuse it), and never
imported by the real shop (the import contract in pyproject.toml checks that). It imports the shop, never the
other way round. See docs/workshop/.
"""
