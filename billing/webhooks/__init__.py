"""Outbound webhooks: events sent, signed, to the endpoints accounts register (issue 17)."""
