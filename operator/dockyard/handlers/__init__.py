"""kopf handlers, one module per kind, each thin: parse the body, call the feature's modules.
`indexes` declares the watch-fed caches; `login` gives kopf a bounded API connection pool; `edge`
maps errors to status and kopf's verdicts.

Importing this package registers every handler with kopf.
"""

from dockyard.handlers import access, build, indexes, login, registry, replication, triggers, webhook

__all__ = ["access", "build", "indexes", "login", "registry", "replication", "triggers", "webhook"]
