"""The kubectl plugin's pure parts: kubectl-style output, auth-file merging and locations, and the
rows of `runs`, `deliveries` and `status`."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.cli import kubectl
from dockyard.cli.login import auth_file, merged_auths, write_login
from dockyard.cli.output import format_objects, format_table, ready_text
from dockyard.cli.views import delivery_rows, registry_rows, run_registry, run_rows, status_screen, status_summary

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def _run(
    name: str, status: str | None, *, namespace: str = "a", start: str | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or {"build": {"registryRef": {"name": "hub"}}},
    }
    if status:
        body["status"] = {"status": status, "runId": f"ca-{name}", "startTime": start}
    return body


def _ready(status: str, reason: str = "Reconciled", message: str = "") -> list[dict[str, str]]:
    return [{"type": "Ready", "status": status, "reason": reason, "message": message}]


def test_objects_print_as_a_kubectl_list_or_one_object() -> None:
    items = [{"kind": "BuildRun", "metadata": {"name": "x"}}]
    assert json.loads(format_objects(items, "json")) == {"apiVersion": "v1", "kind": "List", "items": items}
    assert yaml.safe_load(format_objects(items, "yaml"))["items"] == items
    assert json.loads(format_objects(items, "json", single=True)) == items[0]


def test_tables_pad_columns_and_trim_trailing_blanks() -> None:
    assert format_table([["a", "b"], ["long", ""]], ["NAME", "X"]) == "NAME   X\na      b\nlong"


def test_ready_text_names_the_reason_when_not_ready() -> None:
    assert ready_text({}) == "-"
    assert ready_text({"status": {"conditions": _ready("True")}}) == "True"
    assert ready_text({"status": {"conditions": _ready("False", "QuotaExceeded")}}) == "False (QuotaExceeded)"


def test_auth_files_are_where_docker_and_podman_look(tmp_path: Path) -> None:
    home = Path("/home/u")
    assert auth_file("docker", {}, home) == home / ".docker" / "config.json"
    assert auth_file("docker", {"DOCKER_CONFIG": "/d"}, home) == Path("/d/config.json")
    assert auth_file("podman", {"REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/u"}, home) == Path("/a.json")
    assert auth_file("podman", {"XDG_RUNTIME_DIR": "/run/u"}, home) == Path("/run/u/containers/auth.json")
    assert auth_file("podman", {}, home) == home / ".config" / "containers" / "auth.json"


def test_login_merges_into_the_existing_file_keeping_everything_else(tmp_path: Path) -> None:
    current = {"auths": {"other": {"auth": "b3RoZXI="}}, "credsStore": "desktop"}
    merged = merged_auths(current, "hub:5000", "admin", "pw")
    assert merged["credsStore"] == "desktop" and merged["auths"]["other"] == {"auth": "b3RoZXI="}
    assert base64.b64decode(merged["auths"]["hub:5000"]["auth"]).decode() == "admin:pw"
    path = tmp_path / "sub" / "config.json"
    write_login(path, "hub:5000", "admin", "pw")
    assert path.stat().st_mode & 0o777 == 0o600 and json.loads(path.read_text())["auths"]["hub:5000"]
    path.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        write_login(path, "hub:5000", "admin", "pw")


def test_runs_newest_first_with_the_registry_of_task_runs_in_their_namespace() -> None:
    task = {"metadata": {"name": "t", "namespace": "a"}, "spec": {"registryRef": {"name": "tasks-hub"}}}
    other = {"metadata": {"name": "t", "namespace": "b"}, "spec": {"registryRef": {"name": "elsewhere"}}}
    runs = [
        _run("old", "Succeeded", start="2026-12-01T10:00:00Z"),
        _run("new", "Running", start="2026-12-01T11:59:00Z", taskRef={"name": "t"}),
        _run("queued", None),
    ]
    rows, headers = run_rows(runs, [task, other], wide=True, now=NOW)
    assert headers[:3] == ["NAME", "RUN-ID", "STATUS"] and headers[6] == "REGISTRY"
    assert [r[0] for r in rows] == ["new", "old", "queued"]
    assert rows[0][5] == "1m00s" and rows[0][6] == "tasks-hub" and rows[1][6] == "hub" and rows[2][2] == "Queued"
    assert run_registry(runs[1], [other]) is None
    namespaced, headers = run_rows(runs, [], all_namespaces=True, now=NOW)
    assert headers[0] == "NAMESPACE" and namespaced[0][:2] == ["a", "new"]


def test_delivery_rows_show_pings_by_their_request() -> None:
    records = [
        {
            "id": "d1",
            "action": "ping",
            "state": "failed",
            "attempts": 1,
            "time": "t",
            "request": "r1",
            "error": "refused",
        }
    ]
    rows, headers = delivery_rows(records, wide=True)
    assert rows[0][:7] == ["d1", "ping", "failed", "-", "1", "t", "r1"] and rows[0][-1] == "refused"
    assert headers[-1] == "ERROR"


def test_status_screen_shows_usage_failing_webhooks_and_running_builds() -> None:
    registry = {
        "metadata": {"name": "hub", "namespace": "a"},
        "spec": {"sku": "Basic"},
        "status": {
            "conditions": _ready("True"),
            "loginServer": "hub.a.svc:5000",
            "usage": {
                "webhooks": {"used": 2, "limit": 2},
                "storageBytes": 3 * 1024**3,
                "includedStorageBytes": 10 * 1024**3,
            },
        },
    }
    (row,), _ = registry_rows([registry])
    assert row[4] == "2/2" and row[5] == "3.0Gi/10.0Gi"
    webhooks = [
        {"metadata": {"name": "ok", "namespace": "a"}, "status": {"conditions": _ready("True")}},
        {
            "metadata": {"name": "ci", "namespace": "a"},
            "spec": {"registryRef": {"name": "hub"}},
            "status": {"conditions": _ready("False", "ReceiverFailing", "3 attempts failed")},
        },
    ]
    runs = [_run("done", "Succeeded"), _run("busy", "Running", start="2026-12-01T11:00:00Z")]
    screen = status_screen([registry], webhooks, runs, all_namespaces=False)
    registries, failing, running = screen.split("\n\n")
    assert "hub" in registries and "ci" in failing and "ReceiverFailing" in failing and "\nok " not in failing
    assert [line.split()[0] for line in running.splitlines()[2:]] == ["busy"]
    summary = status_summary([registry], webhooks, runs)
    assert summary["failingWebhooks"] == [
        {"namespace": "a", "name": "ci", "reason": "ReceiverFailing", "message": "3 attempts failed"}
    ]
    assert [b["name"] for b in summary["runningBuilds"]] == ["busy"]
    assert (
        status_screen([], [], [], all_namespaces=True)
        == "Registries: none\n\nFailing webhooks: none\n\nRunning builds: none"
    )


def test_parser_follows_kubectl_flags() -> None:
    parser = kubectl.build_parser()
    args = parser.parse_args(["runs", "-A", "-o", "wide"])
    assert args.all_namespaces and args.output == "wide"
    assert parser.parse_args(["status", "-n", "x", "-o", "yaml"]).namespace == "x"
    with pytest.raises(SystemExit):
        parser.parse_args(["runs", "-o", "table"])
    with pytest.raises(SystemExit):
        parser.parse_args(["deliveries", "ci", "-A"])  # a webhook is namespaced


def test_the_build_clis_commands_are_delegated_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        kubectl.main(["plan", "--help"])
    assert exit_.value.code == 0 and "dockyard plan [-h]" in capsys.readouterr().out
