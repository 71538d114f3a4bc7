"""kopf handlers, one module per kind, each thin: parse the body, call the domain modules.

Importing this package registers every handler with kopf.
"""

from . import registry, webhook  # noqa: F401
