"""``bench/fleet.py`` as a package: one module per program the command runs.

* :mod:`.server`: the server under test (the real aggregator runtime, or the no-op ceiling);
* :mod:`.client`: a client process holding many simulated workers;
* :mod:`.driver`: starts both per scale, measures the window and prints the report.

:mod:`.config` holds the settings they share (a frozen dataclass, no module globals). The entry
point is still ``bench/fleet.py``: the driver starts the servers and clients through it.
"""
