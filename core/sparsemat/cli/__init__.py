"""The ``sparsemat`` command: one module per sub-command, dispatched by :mod:`sparsemat.cli.main`."""
