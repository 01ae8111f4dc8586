"""The ``lam`` command line."""
