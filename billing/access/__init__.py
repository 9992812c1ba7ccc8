"""The unlock check: whether a vehicle may be unlocked now, and why not (issue 17)."""
