"""Access: Tokens and ScopeMaps on the operator's side.

The operator generates each Token's passwords into a Secret (and a dockerconfigjson companion),
publishes their SHA-256 verifiers in the Token's status, counts Tokens and ScopeMaps against the
registry's tier, and reports conditions. It never answers a login: the token service beside each
registry reads Tokens and ScopeMaps itself (`dockyard.auth.directory`), so logins need no
operator and a spec change (scope map, `enabled`, expiry) applies without one.
"""
