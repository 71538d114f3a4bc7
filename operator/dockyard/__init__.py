"""Dockyard: container registries and image builds as Kubernetes resources."""
