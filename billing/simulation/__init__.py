"""A simulated fleet: its telemetry (`simulator`), `billing simulate` (`commands`), and the
demo data `billing run` starts with (`demo`)."""
