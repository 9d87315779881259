"""Running Petrel as a system service: sd_notify readiness (:mod:`.notify`), and the hooks a
daemon runs beside its protocol work (:mod:`.hooks`: SIGHUP reload of the configuration file,
the metrics endpoint, naming IKE SAs in log lines)."""
