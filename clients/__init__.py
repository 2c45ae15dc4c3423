"""Clients of the evostim server, by job: ``http`` (the Python client), ``simulation`` (simulated neurons,
the in-silico loop, the demo), ``sweeps``, ``analysis`` (and the report), ``rig`` (file bridge, MATLAB)."""
