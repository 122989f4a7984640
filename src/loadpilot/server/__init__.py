"""The HTTP API (ingest and queries) and, later, the dashboard."""
