"""What a credential may do: grants on repository patterns, and the scopes clients ask for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RegistryAction = Literal["pull", "push", "delete", "metadata_read", "metadata_write"]
"""distribution enforces pull, push and delete; `metadata_read` and `metadata_write` are ACR's names
(acr-cli asks for them), carried in tokens for a request gate but enforced by no distribution
version (see README, Access)."""
ALL_ACTIONS: tuple[RegistryAction, ...] = ("pull", "push", "delete")


class Grant(BaseModel):
    """Actions on the repositories a pattern matches: `*` every repository, `team/*` every
    repository under team/ (also ones not created yet), anything else one repository."""

    model_config = ConfigDict(frozen=True)

    repositories: str = Field(min_length=1)
    actions: tuple[RegistryAction, ...]
    catalog: bool = False

    def matches(self, repository: str) -> bool:
        if self.repositories == "*":
            return True
        if self.repositories.endswith("/*"):
            return repository.startswith(self.repositories[:-1])
        return repository == self.repositories


@dataclass(frozen=True)
class Scope:
    """One `scope` parameter of a token request, e.g. `repository:team/app:pull,push`."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        parts = text.split(":")
        if len(parts) < 3:
            return None
        # a repository name can carry a port-less host prefix but never a colon; the type may carry a
        # resource class, e.g. `repository(plugin)`
        kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
        kind = kind.split("(", 1)[0]
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


def allowed_actions(grants: tuple[Grant, ...], scope: Scope) -> list[str]:
    """The subset of the scope's actions the grants allow; grants add up. `*` in a request means
    every action the grants give."""
    if scope.type == "registry":
        if scope.name == "catalog" and any(g.catalog for g in grants):
            return ["*"]
        return []
    if scope.type != "repository":
        return []
    granted: set[str] = set()
    for grant in grants:
        if grant.matches(scope.name):
            granted.update(grant.actions)
    if "push" in granted:
        granted.add("pull")
    if "*" in scope.actions:
        return sorted(granted)
    return [action for action in scope.actions if action in granted]
