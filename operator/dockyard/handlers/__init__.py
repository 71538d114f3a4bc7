"""kopf handlers, one module per kind, each thin: parse the body, call the domain modules.

Importing this package registers every handler with kopf; the modules arrive with the kinds.
"""
