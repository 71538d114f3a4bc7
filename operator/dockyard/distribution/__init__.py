"""The one client of the registry /v2 API (CNCF distribution and any OCI registry)."""
