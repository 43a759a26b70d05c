r"""The ``d2a`` command line (installed as :mod:`d2a.cli`)."""
