"""Prometheus metrics (optional, ``petrel daemon --metrics ADDR:PORT``).

:mod:`.counting` counts what the daemon sees pass (IKE messages by exchange, retransmissions,
engine events) without I/O; :mod:`.collector` turns those counts and the daemon's own
accessors (SAs, data-plane counters, drops) into Prometheus families at each scrape;
:mod:`.http` serves them from the daemon's event loop.  No key, SPI or secret is exported.
"""
