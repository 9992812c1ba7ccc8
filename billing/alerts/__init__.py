"""Usage alerts: thresholds on the amount to date or on a metric of the period (issue 17)."""
