"""The registry's API and the vehicle changes that reach beyond the registry's own tables
(billing.devices): parts fitted, invoiced months adjusted, plans ended, access locked."""
