"""Registry authentication: the Docker token protocol served next to each registry.

The operator renders an `AuthPolicy` (who may do what) into a Secret; the token service mounted
beside the registry reads it, checks Basic credentials and answers `GET /token` with a JWT whose
`access` claim lists the granted actions. It needs nothing from the operator at run time, so logins
keep working while the operator is down.
"""
