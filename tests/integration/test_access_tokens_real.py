"""Tokens and scope maps end to end: the operator generates the passwords, the real token service
(its own ServiceAccount, with the Role the operator rendered, reading Tokens and ScopeMaps from the
real API server) answers the logins, and the real registry binary (distribution 3.x, the default
image's version) enforces the scopes; skopeo is the client for pulls and pushes, plain HTTP with a
bearer token for the single calls (delete, untag, tag list, catalog).

One registry for the module. Every cell of the matrix (action x repository exact / under a wildcard
/ outside the map) is asserted, in one test so a failure lists every wrong cell at once.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from test_registry import _apply, _until, crds, operator  # noqa: F401  (fixtures)

from realregistry import LocalRegistry, read_secret, write_oci_image

pytestmark = pytest.mark.integration

REGISTRY = "acc"
ACTIONS = ("content/read", "content/write", "content/delete", "metadata/read", "metadata/write")
# Each matrix token holds one action on the exact repository `team/app` and under `wild/*`.
MATRIX_TOKENS = {f"only-{a.replace('/', '-')}": a for a in ACTIONS}
REPOSITORIES = {"exact": "team/app", "wildcard": "wild/x", "outside": "other/app"}


def _kube_apply(cluster: Any, namespace: str, *documents: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))


def _scope_map(name: str, actions: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "ScopeMap",
        "metadata": {"name": name},
        "spec": {"registryRef": {"name": REGISTRY}, "actions": actions},
    }


def _token(name: str, scope_map: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Token",
        "metadata": {"name": name},
        "spec": {"registryRef": {"name": REGISTRY}, "scopeMapRef": {"name": scope_map}, **spec},
    }


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _ready(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    body = _get(cluster, namespace, kind, name)
    for condition in ((body or {}).get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready" and condition["status"] == "True":
            return body
    return None


class Stack:
    def __init__(self, cluster: Any, namespace: str, registry: LocalRegistry, service: str) -> None:
        self.cluster, self.namespace, self.registry, self.service = cluster, namespace, registry, service

    def password(self, token: str, which: str = "password1") -> str:
        secret = _until(lambda: read_secret(self.cluster, self.namespace, f"{token}.token"), f"{token}'s Secret")
        return str(secret[which])

    def bearer(self, user: str, password: str, scope: str) -> str | int:
        """The registry token for `scope`, or the token service's HTTP status when refused."""
        response = httpx.get(
            f"https://127.0.0.1:{self.registry.token_port}/token",
            params={"service": self.service, "scope": scope},
            auth=(user, password),
            verify=False,
            timeout=10,
        )
        return response.json()["token"] if response.status_code == 200 else response.status_code

    def call(self, method: str, path: str, user: str, password: str, scope: str) -> int:
        token = self.bearer(user, password, scope)
        if isinstance(token, int):
            return token
        response = httpx.request(
            method,
            f"https://127.0.0.1:{self.registry.port}{path}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.oci.image.manifest.v1+json"},
            verify=False,
            timeout=10,
        )
        return response.status_code

    def login(self, user: str, password: str) -> bool:
        """`docker login` as skopeo does it: GET /v2/, the challenge, GET /token with no scope."""
        result = subprocess.run(
            [
                "skopeo",
                "login",
                "--tls-verify=false",
                "--authfile",
                str(self.registry.workdir / f"auth-{secrets.token_hex(4)}.json"),
                "-u",
                user,
                "--password-stdin",
                f"127.0.0.1:{self.registry.port}",
            ],
            input=password,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.returncode == 0

    def pull(self, user: str, password: str, repository: str, tag: str = "v1") -> bool:
        result = self.registry.skopeo(
            "inspect", "--tls-verify=false", "--creds", f"{user}:{password}",
            f"docker://127.0.0.1:{self.registry.port}/{repository}:{tag}",
        )  # fmt: skip
        return result.returncode == 0

    def push(self, user: str, password: str, repository: str, tag: str) -> bool:
        return self.registry.push(f"{user}:{password}", tag, repository).returncode == 0

    def seed(self, repository: str, tag: str = "v1") -> str:
        """Push as the admin; the manifest's digest."""
        admin = read_secret(self.cluster, self.namespace, f"{REGISTRY}-admin")
        assert admin is not None
        pushed = self.registry.push(f"{REGISTRY}:{admin['password']}", tag, repository)
        assert pushed.returncode == 0, pushed.stderr
        token = self.bearer(REGISTRY, admin["password"], f"repository:{repository}:pull")
        assert isinstance(token, str)
        response = httpx.head(
            f"https://127.0.0.1:{self.registry.port}/v2/{repository}/manifests/{tag}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.oci.image.manifest.v1+json"},
            verify=False,
            timeout=10,
        )
        assert response.status_code == 200, response.status_code
        return str(response.headers["Docker-Content-Digest"])


def _service_account_kubeconfig(cluster: Any, namespace: str, path: Path) -> Path:
    """A kubeconfig with a token of the ServiceAccount the operator made for the token service:
    the service reads the API with exactly the Role the operator rendered."""
    account = f"{REGISTRY}-token-service"
    _until(lambda: _get(cluster, namespace, "serviceaccount", account), "the token service's ServiceAccount")
    _until(lambda: _get(cluster, namespace, "rolebinding", account), "its RoleBinding")
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c["cluster"] for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {**server, "certificate-authority": None}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    ca = server.get("certificate-authority")
    cluster_entry = config["clusters"][0]["cluster"]  # type: ignore[index]
    if ca:
        cluster_entry["certificate-authority"] = str((Path(cluster.kubeconfig).parent / ca).resolve())
    else:
        cluster_entry.pop("certificate-authority")
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def stack(
    cluster: Any, crds: None, operator: str, tmp_path_factory: pytest.TempPathFactory, distribution_v3: Path
) -> Iterator[Stack]:
    namespace = f"t-access-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    workdir = tmp_path_factory.mktemp("access")
    write_oci_image(workdir / "image")
    _apply(cluster, namespace, REGISTRY, {"sku": "Standard", "adminUser": {"enabled": True}})
    documents = []
    for token, action in MATRIX_TOKENS.items():
        documents.append(_scope_map(token, [f"repositories/team/app/{action}", f"repositories/wild/*/{action}"]))
        documents.append(_token(token, token))
    documents += [
        _scope_map("catalog", ["repositories/*/metadata/read"]),
        _token("catalog-reader", "catalog"),
        _token("admin-token", "_repositories_admin"),
        _scope_map("changing", ["repositories/team/app/content/read"]),
        _token("changing", "changing"),
    ]
    _kube_apply(cluster, namespace, *documents)
    kubeconfig = _service_account_kubeconfig(cluster, namespace, workdir / "token-service.kubeconfig")
    registry = LocalRegistry(
        cluster,
        namespace,
        REGISTRY,
        workdir,
        str(distribution_v3),
        token_args=(
            "--registry", REGISTRY, "--namespace", namespace,
            "--kubeconfig", str(kubeconfig), "--snapshot", str(workdir / "snapshot.json"),
        ),
    )  # fmt: skip
    for token in [*MATRIX_TOKENS, "catalog-reader", "admin-token", "changing"]:
        _until(lambda t=token: _ready(cluster, namespace, "token", t), f"Token {token} Ready", 90)
    registry.start()
    config = yaml.safe_load((workdir / "config.yml").read_text())
    try:
        yield Stack(cluster, namespace, registry, config["auth"]["token"]["service"])
    finally:
        registry.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _expected(action: str, place: str, operation: str) -> bool:
    """What each matrix token may do: its one action, on `team/app` and under `wild/*` only."""
    if place == "outside":
        return False
    return {
        "pull": action in ("content/read", "content/write"),  # write implies read (ACR: "use with read")
        "push": action == "content/write",
        "delete": action == "content/delete",
        "untag": action == "content/delete",  # metadata/write cannot untag: distribution needs delete
        "tags": action in ("content/read", "content/write"),  # tag listing is a pull in distribution
        "catalog": False,  # only metadata/read on `*` lists the catalog
    }[operation]


def test_scope_map_matrix(stack: Stack) -> None:
    digests = {place: stack.seed(repository) for place, repository in REPOSITORIES.items()}
    wrong = []

    def check(token: str, place: str, operation: str, done: bool) -> None:
        expected = _expected(MATRIX_TOKENS[token], place, operation)
        if done != expected:
            wrong.append(f"{token} {operation} {REPOSITORIES[place]}: {'allowed' if done else 'denied'}")

    for token in MATRIX_TOKENS:
        password = stack.password(token)
        assert stack.login(token, password), f"{token} cannot log in"
        for place, repository in REPOSITORIES.items():
            check(token, place, "pull", stack.pull(token, password, repository))
            # under the wildcard, a repository that does not exist yet
            target = f"wild/new-{token}" if place == "wildcard" else repository
            check(token, place, "push", stack.push(token, password, target, f"by-{token}"))
            tags = stack.call("GET", f"/v2/{repository}/tags/list", token, password, f"repository:{repository}:pull")
            check(token, place, "tags", tags == 200)
        catalog = stack.call("GET", "/v2/_catalog", token, password, "registry:catalog:*")
        check(token, "exact", "catalog", catalog == 200)
    # Deletes last; each allowed one on content seeded again just before.
    for token, action in MATRIX_TOKENS.items():
        password = stack.password(token)
        for place, repository in REPOSITORIES.items():
            if _expected(action, place, "untag"):
                stack.seed(repository, "untag-me")
            scope = f"repository:{repository}:delete,metadata_write"
            untag = stack.call("DELETE", f"/v2/{repository}/manifests/untag-me", token, password, scope)
            check(token, place, "untag", untag == 202)
            if _expected(action, place, "delete"):
                digests[place] = stack.seed(repository)
            deleted = stack.call("DELETE", f"/v2/{repository}/manifests/{digests[place]}", token, password, scope)
            check(token, place, "delete", deleted == 202)
    assert wrong == []
    # metadata/read on `*` lists the catalog (and grants no content).
    reader = stack.password("catalog-reader")
    assert stack.call("GET", "/v2/_catalog", "catalog-reader", reader, "registry:catalog:*") == 200
    assert not stack.pull("catalog-reader", reader, "team/app")
    # The system map _repositories_admin: everything, everywhere.
    admin = stack.password("admin-token")
    assert stack.push("admin-token", admin, "anything/new", "v1") and stack.pull("admin-token", admin, "anything/new")


def test_a_scope_map_change_applies_without_restart(stack: Stack) -> None:
    stack.seed("team/app")
    password = stack.password("changing")
    assert stack.pull("changing", password, "team/app")
    assert not stack.push("changing", password, "team/app", "changed")
    _kube_apply(
        stack.cluster,
        stack.namespace,
        _scope_map("changing", ["repositories/team/app/content/read", "repositories/team/app/content/write"]),
    )
    _until(lambda: stack.push("changing", password, "team/app", "changed"), "the new scope to apply", 30)
    _kube_apply(stack.cluster, stack.namespace, _token("changing", "_repositories_pull"))
    _until(lambda: not stack.push("changing", password, "team/app", "changed-again"), "the system map to apply", 30)


def test_disabled_token_and_expired_password_get_401(stack: Stack) -> None:
    name = "lifecycle"
    _kube_apply(stack.cluster, stack.namespace, _token(name, "_repositories_pull"))
    _until(lambda: _ready(stack.cluster, stack.namespace, "token", name), "Token Ready")
    one, two = stack.password(name, "password1"), stack.password(name, "password2")
    _until(lambda: stack.login(name, one), "the new token to log in", 30)
    _kube_apply(stack.cluster, stack.namespace, _token(name, "_repositories_pull", enabled=False))
    _until(lambda: stack.bearer(name, one, "") == 401, "a disabled token to be refused", 30)
    assert not stack.login(name, one) and not stack.login(name, two)
    # Expiry, with the clock in the test's hands: password1 expired an hour ago, password2 in a year.
    passwords = [
        {"name": "password1", "expiry": "2020-01-01T00:00:00Z"},
        {"name": "password2", "expiry": "2099-01-01T00:00:00Z"},
    ]
    _kube_apply(stack.cluster, stack.namespace, _token(name, "_repositories_pull", passwords=passwords))
    _until(lambda: stack.bearer(name, two, "") != 401, "the token to be enabled again", 30)
    assert stack.bearer(name, one, "") == 401 and not stack.login(name, one)
    assert stack.login(name, two)


def test_rotating_one_password_keeps_the_other_working(stack: Stack) -> None:
    name = "rotated"
    _kube_apply(stack.cluster, stack.namespace, _token(name, "_repositories_pull"))
    _until(lambda: _ready(stack.cluster, stack.namespace, "token", name), "Token Ready")
    one, two = stack.password(name, "password1"), stack.password(name, "password2")
    _until(lambda: stack.login(name, one), "the token to log in", 30)
    stack.cluster.kubectl(
        "annotate", "token", name, "-n", stack.namespace, "dockyard.dev/regenerate-password=password1"
    )
    new = _until(lambda: (p := stack.password(name, "password1")) != one and p, "password1 to be regenerated")
    assert stack.password(name, "password2") == two
    _until(lambda: stack.login(name, new), "the new password1 to work", 30)
    assert not stack.login(name, one)
    assert stack.login(name, two)
    pull = read_secret(stack.cluster, stack.namespace, f"{name}.token-pull")
    assert pull is not None and json.loads(pull[".dockerconfigjson"])["auths"]
    assert {entry["password"] for entry in json.loads(pull[".dockerconfigjson"])["auths"].values()} == {new}
    events = stack.cluster.kubectl(
        "get", "events", "-n", stack.namespace, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    assert "PasswordRegenerated" in events and new not in events and one not in events


def test_logins_work_from_the_snapshot_while_the_api_is_unreachable(stack: Stack, tmp_path: Path) -> None:
    password = stack.password("admin-token")
    _until((stack.registry.workdir / "snapshot.json").exists, "the snapshot to be written", 30)
    assert password not in (stack.registry.workdir / "snapshot.json").read_text()
    unreachable = tmp_path / "unreachable.kubeconfig"
    config = yaml.safe_load((stack.registry.workdir / "token-service.kubeconfig").read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens there
    unreachable.write_text(yaml.safe_dump(config))
    stack.registry.stop_token_service()
    args = list(stack.registry.token_args)
    args[args.index("--kubeconfig") + 1] = str(unreachable)
    saved, stack.registry.token_args = stack.registry.token_args, tuple(args)
    try:
        stack.registry.start_token_service()
        assert stack.login("admin-token", password)
        assert stack.push("admin-token", password, "team/snapshot", "v1")
        assert not stack.login("admin-token", "wrong")
    finally:
        stack.registry.stop_token_service()
        stack.registry.token_args = saved
        stack.registry.start_token_service()


def test_invalid_actions_are_refused_at_admission(stack: Stack) -> None:
    for action in ("repositories/team*/content/read", "repositories/a/*/b/content/read", "repositories/a/run"):
        result = stack.cluster.kubectl(
            "apply", "-n", stack.namespace, "-f", "-",
            input=yaml.safe_dump(_scope_map("bad", [action])), check=False,
        )  # fmt: skip
        assert result.returncode != 0 and "actions" in result.stderr, action


def test_the_registry_counts_its_tokens_against_the_tier(stack: Stack) -> None:
    def usage() -> dict[str, Any] | None:
        listed = json.loads(stack.cluster.kubectl("get", "tokens", "-n", stack.namespace, "-o", "json").stdout)
        mine = [t for t in listed["items"] if t["spec"]["registryRef"]["name"] == REGISTRY]
        body = _get(stack.cluster, stack.namespace, "registry", REGISTRY) or {}
        tokens = ((body.get("status") or {}).get("usage") or {}).get("tokens")
        return tokens if tokens and tokens["used"] == len(mine) else None

    assert _until(usage, "usage.tokens to count the registry's tokens", 30)["limit"] == 500
