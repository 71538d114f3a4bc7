"""A Webhook's status, from the directory entry the resolver builds and the store's view."""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dockyard.core.cache import ClusterCache
from dockyard.core.conditions import find_condition
from dockyard.core.meta import Owner
from dockyard.models.webhook import WebhookSpec
from dockyard.webhooks.directory import Problem, Target, WebhookEntry
from dockyard.webhooks.resolve import WebhookResolver, build_signing_secret, quota_position
from dockyard.webhooks.scope import EventFilter
from dockyard.webhooks.status import build_webhook_status
from dockyard.webhooks.store import Delivery, Totals

T0 = datetime(2026, 11, 29, 9, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
EPOCH0 = T0.timestamp()

SECRET_URL = "https://hooks.example.com/services/T000/B000/url-token-4f1c9a"
SECRET_HEADER = "Bearer header-token-8e2d7b"
SECRET_KEY = "signing-key-0a9c3e"


def target() -> Target:
    return Target(
        url=SECRET_URL,
        headers=(("Authorization", SECRET_HEADER), ("X-Team", "platform")),
        signing_key=SECRET_KEY.encode(),
    )


def entry(*, enabled: bool = True, problem: Problem | None = None, with_target: bool = True) -> WebhookEntry:
    return WebhookEntry(
        uid="uid-1",
        namespace="team",
        name="hook",
        registry="reg",
        filter=EventFilter(frozenset({"push", "delete"}), "", enabled),
        max_attempts=15,
        timeout_seconds=10.0,
        target=target() if with_target else None,
        problem=problem,
    )


def delivery(
    id: str = "d1",
    *,
    state: str = "delivered",
    attempts: int = 1,
    http_status: int | None = 200,
    error: str | None = None,
    last_attempt: float | None = EPOCH0 + 1,
    ping: bool = False,
) -> Delivery:
    return Delivery(
        id=id,
        webhook_uid="uid-1",
        namespace="team",
        webhook="hook",
        event_id=f"event-{id}",
        action="ping" if ping else "push",
        target=None if ping else "team/app:v1",
        body=b"{}",
        state=state,
        attempts=attempts,
        max_attempts=15,
        accepted_at=EPOCH0,  # type: ignore[arg-type]
        next_attempt_at=EPOCH0,
        last_attempt_at=last_attempt,
        http_status=http_status,
        latency_ms=None if last_attempt is None else 42,
        error=error,
        ping=ping,
    )


def status(
    entry_: WebhookEntry | None = None,
    totals: Totals = Totals(),
    recent: list[Delivery] | None = None,
    *,
    current: dict[str, Any] | None = None,
    last_ping: Delivery | None = None,
    generation: int = 1,
    signing: str | None = "hook-signing",
    now: datetime = T0,
) -> dict[str, Any]:
    return build_webhook_status(current or {}, generation, entry_, totals, recent or [], last_ping, signing, now=now)


def ready(result: dict[str, Any]) -> dict[str, Any]:
    condition = find_condition(result["conditions"], "Ready")
    assert condition is not None
    return condition


def test_ready_and_reconciled_normally() -> None:
    result = status(entry(), Totals(delivered=3, failed=1, pending=2), [delivery()])
    assert ready(result) == {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "message": "receiving events",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-11-29T09:00:00Z",
    }
    assert result["deliveries"] == {"delivered": 3, "failed": 1, "pending": 2}
    assert result["observedGeneration"] == 1
    assert result["signingSecretName"] == "hook-signing"


def test_no_signing_secret_name_when_the_user_brings_one() -> None:
    # None: the merge patch removes a name left from when the operator generated the key
    assert status(entry(), signing=None)["signingSecretName"] is None


def test_not_resolved_yet_is_progressing() -> None:
    condition = ready(status(None))
    assert (condition["status"], condition["reason"]) == ("False", "Progressing")


def test_disabled_is_ready_with_reason_disabled() -> None:
    condition = ready(status(entry(enabled=False)))
    assert (condition["status"], condition["reason"]) == ("True", "Disabled")
    assert "enabled is false" in condition["message"]


@pytest.mark.parametrize("reason", ["QuotaExceeded", "DependencyNotReady"])
def test_problem_reason_and_message_propagate(reason: str) -> None:
    problem = Problem(reason, f"the {reason} message")
    condition = ready(status(entry(problem=problem, with_target=False)))
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        reason,
        f"the {reason} message",
    )


def test_problem_wins_over_disabled_and_failing() -> None:
    problem = Problem("QuotaExceeded", "over quota")
    condition = ready(status(entry(enabled=False, problem=problem), Totals(failing_attempts=9)))
    assert condition["reason"] == "QuotaExceeded"


def test_two_failing_attempts_are_still_ready() -> None:
    recent = [delivery(state="pending", http_status=500)]
    assert ready(status(entry(), Totals(pending=1, failing_attempts=2), recent))["reason"] == "Reconciled"


def test_receiver_failing_after_three_failing_attempts_names_the_last_status() -> None:
    recent = [
        delivery("waiting", state="pending", attempts=0, http_status=None, last_attempt=None),
        delivery("d3", state="pending", attempts=3, http_status=503, last_attempt=EPOCH0 + 30),
        delivery("d2", state="failed", attempts=1, http_status=404, last_attempt=EPOCH0 + 20),
    ]
    condition = ready(status(entry(), Totals(failed=1, pending=2, failing_attempts=4), recent))
    assert (condition["status"], condition["reason"]) == ("False", "ReceiverFailing")
    assert condition["message"] == (
        "the last 4 delivery attempts failed; last: HTTP 503; 2 event(s) pending, retried with backoff"
    )


def test_receiver_failing_names_the_last_error_without_a_status() -> None:
    recent = [delivery(state="pending", attempts=3, http_status=None, error="timed out after 10s")]
    message = ready(status(entry(), Totals(pending=1, failing_attempts=3), recent))["message"]
    assert "last: timed out after 10s" in message


def test_successful_delivery_clears_receiver_failing() -> None:
    failing = status(entry(), Totals(failing_attempts=5), [delivery(state="pending", http_status=500)], now=T0)
    assert ready(failing)["status"] == "False"
    recovered = status(entry(), Totals(delivered=1, failing_attempts=0), [delivery()], current=failing, now=T1)
    assert (ready(recovered)["status"], ready(recovered)["reason"]) == ("True", "Reconciled")
    assert ready(recovered)["lastTransitionTime"] == "2026-11-29T09:05:00Z"


def test_recent_delivery_records() -> None:
    recent = [
        delivery(
            "d2", state="pending", attempts=2, http_status=None, error="timed out after 10s", last_attempt=EPOCH0 + 61
        ),
        delivery("d1"),
        delivery("d0", state="pending", attempts=0, http_status=None, last_attempt=None),
    ]
    assert status(entry(), Totals(), recent)["recentDeliveries"] == [
        {
            "id": "d2",
            "eventId": "event-d2",
            "action": "push",
            "state": "pending",
            "time": "2026-11-29T09:01:01Z",
            "attempts": 2,
            "target": "team/app:v1",
            "latencyMs": 42,
            "error": "timed out after 10s",
        },
        {
            "id": "d1",
            "eventId": "event-d1",
            "action": "push",
            "state": "delivered",
            "time": "2026-11-29T09:00:01Z",
            "attempts": 1,
            "target": "team/app:v1",
            "httpStatus": 200,
            "latencyMs": 42,
        },
        {
            "id": "d0",
            "eventId": "event-d0",
            "action": "push",
            "state": "pending",
            "time": "2026-11-29T09:00:00Z",
            "attempts": 0,
            "target": "team/app:v1",
        },
    ]


def test_recent_deliveries_are_capped_at_ten() -> None:
    recent = [delivery(f"d{n}") for n in range(15)]
    assert [r["id"] for r in status(entry(), Totals(), recent)["recentDeliveries"]] == [f"d{n}" for n in range(10)]


def test_long_errors_are_truncated() -> None:
    record = status(entry(), Totals(), [delivery(state="failed", error="x" * 1000)])["recentDeliveries"][0]
    assert record["error"] == "x" * 256


def test_last_ping_is_reported() -> None:
    ping = delivery("p1", ping=True, state="failed", http_status=401)
    assert status(entry(), last_ping=ping)["lastPing"] == {
        "id": "p1",
        "eventId": "event-p1",
        "action": "ping",
        "state": "failed",
        "time": "2026-11-29T09:00:01Z",
        "attempts": 1,
        "httpStatus": 401,
        "latencyMs": 42,
        "target": None,
        "request": None,
        "error": None,
    }


def test_a_new_ping_clears_what_the_last_one_reported() -> None:
    from dockyard.core.kube import contains

    old = {"lastPing": {"id": "p1", "state": "delivered", "httpStatus": 200, "latencyMs": 12}}
    new = status(entry(), last_ping=delivery("p2", ping=True, state="failed", http_status=None, error="ConnectError"))
    assert new["lastPing"]["httpStatus"] is None and new["lastPing"]["latencyMs"] == 42
    assert not contains(old, {"lastPing": new["lastPing"]})
    assert "lastPing" not in status(entry())


def test_status_never_holds_the_url_or_header_values() -> None:
    recent = [
        delivery("d3", state="pending", attempts=3, http_status=None, error="ConnectError: cannot reach ***"),
        delivery("d2", state="failed", http_status=410),
        delivery("d1"),
    ]
    ping = delivery("p1", ping=True)
    for entry_ in (entry(), entry(enabled=False), entry(problem=Problem("QuotaExceeded", "over quota"))):
        text = json.dumps(
            status(entry_, Totals(delivered=1, failed=1, pending=1, failing_attempts=3), recent, last_ping=ping)
        )
        for secret in (
            SECRET_URL,
            "hooks.example.com",
            "url-token-4f1c9a",
            SECRET_HEADER,
            "header-token-8e2d7b",
            SECRET_KEY,
            "platform",
        ):
            assert secret not in text


def test_last_transition_time_stays_while_status_is_unchanged() -> None:
    first = status(entry(), Totals(delivered=1), [delivery()], now=T0)
    second = status(entry(), Totals(delivered=2), [delivery("d2"), delivery()], current=first, generation=2, now=T1)
    assert ready(second)["lastTransitionTime"] == "2026-11-29T09:00:00Z"
    assert ready(second)["observedGeneration"] == 2
    again = status(entry(), Totals(delivered=2), [delivery("d2"), delivery()], current=second, generation=2, now=T1)
    assert again == second


def test_last_transition_time_moves_when_ready_flips() -> None:
    first = status(entry(), now=T0)
    second = status(entry(problem=Problem("DependencyNotReady", "Registry reg not found")), current=first, now=T1)
    assert ready(second)["lastTransitionTime"] == "2026-11-29T09:05:00Z"


def test_other_conditions_are_kept() -> None:
    other = {
        "type": "Custom",
        "status": "True",
        "reason": "Reconciled",
        "message": "",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    result = status(entry(), current={"conditions": [other]})
    assert [c["type"] for c in result["conditions"]] == ["Custom", "Ready"]


# --- entries from the resolver: quota position, targets, signing secret ---------------------------


def b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


class FakeKube:
    """Only `get`, returning Secrets; records what was read."""

    cache = ClusterCache()  # unbound: every lookup goes to `get`

    def read_child(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(api_version, kind, namespace, name)  # type: ignore[no-any-return]

    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets
        self.reads: list[tuple[str, str, str, str]] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((api_version, kind, namespace, name))
        if kind != "Secret" or name not in self.secrets:
            return None
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "data": {key: b64(value) for key, value in self.secrets[name].items()},
        }


def webhook(name: str, created: str, uid: str | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Webhook",
        "metadata": {"name": name, "namespace": "team", "uid": uid or f"uid-{name}", "creationTimestamp": created},
        "spec": {
            "registryRef": {"name": "reg"},
            "serviceUri": "https://hooks.example.com/acr",
            "actions": ["push"],
            **spec,
        },
    }


def registry(sku: str = "Basic") -> dict[str, Any]:
    return {"metadata": {"name": "reg", "namespace": "team"}, "spec": {"sku": sku}}


def resolve(
    body: dict[str, Any],
    kube: FakeKube,
    reg: dict[str, Any] | None = None,
    siblings: list[dict[str, Any]] | None = None,
) -> WebhookEntry:
    spec = WebhookSpec.model_validate(body["spec"])
    return WebhookResolver(kube).entry(body, spec, registry() if reg is None else reg, siblings or [body])  # type: ignore[arg-type]


SIGNING = {"hook-signing": {"secret": SECRET_KEY}}


def test_build_signing_secret() -> None:
    owner = Owner("dockyard.dev/v1alpha1", "Webhook", "hook", "team", "uid-1")
    secret = build_signing_secret(owner, "k3y")
    assert secret["metadata"]["name"] == "hook-signing"
    assert secret["metadata"]["namespace"] == "team"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "Opaque")
    assert secret["data"] == {"secret": b64("k3y")}


def test_quota_position_is_creation_order_then_name() -> None:
    a = webhook("a", "2026-01-01T00:00:00Z")
    b = webhook("b", "2026-01-02T00:00:00Z")
    c = webhook("c", "2026-01-02T00:00:00Z")
    old = webhook("z-old", "2025-12-31T23:59:59Z")
    siblings = [c, b, a, old]
    assert [quota_position(w, siblings) for w in (old, a, b, c)] == [0, 1, 2, 3]


def test_quota_position_ignores_itself_and_works_without_siblings() -> None:
    me = webhook("me", "2026-01-01T00:00:00Z")
    assert quota_position(me, []) == 0
    assert quota_position(me, [me, me]) == 0


def test_webhook_within_the_tier_limit_receives_events() -> None:
    siblings = [webhook("a", "2026-01-01T00:00:00Z"), webhook("b", "2026-01-02T00:00:00Z")]
    result = resolve(siblings[1], FakeKube({"b-signing": {"secret": "k"}}), registry("Basic"), siblings)
    assert (result.problem, result.receives_events) == (None, True)


def test_webhook_beyond_the_tier_limit_is_quota_exceeded() -> None:
    siblings = [webhook(n, f"2026-01-0{i + 1}T00:00:00Z") for i, n in enumerate(("a", "b", "c"))]
    result = resolve(siblings[2], FakeKube({"c-signing": {"secret": "k"}}), registry("Basic"), siblings)
    assert result.receives_events is False
    assert result.problem is not None
    assert result.problem.reason == "QuotaExceeded"
    assert result.problem.message.startswith("Quota exceeded for resource type webhooks for the registry SKU Basic")
    assert "allows 2 webhooks and this one is number 3" in result.problem.message
    condition = ready(status(result))
    assert (condition["status"], condition["reason"]) == ("False", "QuotaExceeded")


def test_higher_tier_allows_more_webhooks() -> None:
    siblings = [webhook(n, f"2026-01-0{i + 1}T00:00:00Z") for i, n in enumerate(("a", "b", "c"))]
    result = resolve(siblings[2], FakeKube({"c-signing": {"secret": "k"}}), registry("Standard"), siblings)
    assert (result.problem, result.receives_events) == (None, True)


def test_missing_registry_is_dependency_not_ready() -> None:
    body = webhook("hook", "2026-01-01T00:00:00Z")
    spec = WebhookSpec.model_validate(body["spec"])
    result = WebhookResolver(FakeKube(SIGNING)).entry(body, spec, None, [body])  # type: ignore[arg-type]
    assert result.receives_events is False
    assert result.problem == Problem("DependencyNotReady", "Registry reg not found")
    assert ready(status(result))["reason"] == "DependencyNotReady"


def test_entry_carries_filter_and_delivery_policy() -> None:
    body = webhook(
        "hook",
        "2026-01-01T00:00:00Z",
        actions=["push", "delete"],
        scope="team/*:*",
        enabled=False,
        location="westeurope",
        delivery={"maxAttempts": 5, "timeoutSeconds": 3},
    )
    result = resolve(body, FakeKube(SIGNING))
    assert (result.uid, result.namespace, result.name, result.registry) == ("uid-hook", "team", "hook", "reg")
    assert result.filter == EventFilter(frozenset({"push", "delete"}), "team/*:*", False, "westeurope")
    assert (result.max_attempts, result.timeout_seconds) == (5, 3.0)


def test_target_from_literal_uri_and_generated_signing_secret() -> None:
    kube = FakeKube(SIGNING)
    result = resolve(
        webhook("hook", "2026-01-01T00:00:00Z", customHeaders=[{"name": "X-Team", "value": "platform"}]), kube
    )
    assert result.problem is None
    assert result.target == Target(
        url="https://hooks.example.com/acr", headers=(("X-Team", "platform"),), signing_key=SECRET_KEY.encode()
    )
    assert ("v1", "Secret", "team", "hook-signing") in kube.reads


def test_target_from_secrets() -> None:
    kube = FakeKube(
        {
            "hook-url": {"uri": SECRET_URL + "\n"},
            "hook-token": {"value": SECRET_HEADER},
            "my-signing": {"key": "user-key"},
        }
    )
    body = webhook(
        "hook",
        "2026-01-01T00:00:00Z",
        serviceUriSecretRef={"name": "hook-url", "key": "uri"},
        customHeaders=[
            {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "hook-token", "key": "value"}}}
        ],
        signingSecretRef={"name": "my-signing", "key": "key"},
    )
    del body["spec"]["serviceUri"]
    result = resolve(body, kube)
    assert result.problem is None
    assert result.target == Target(url=SECRET_URL, headers=(("Authorization", SECRET_HEADER),), signing_key=b"user-key")


def test_secret_missing_is_dependency_not_ready_without_a_target() -> None:
    result = resolve(webhook("hook", "2026-01-01T00:00:00Z"), FakeKube({}))
    assert result.target is None
    assert result.problem == Problem("DependencyNotReady", "Secret hook-signing not found")
    assert result.receives_events is True


def test_secret_key_missing_names_the_key() -> None:
    body = webhook(
        "hook",
        "2026-01-01T00:00:00Z",
        customHeaders=[{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "value"}}}],
    )
    result = resolve(body, FakeKube({**SIGNING, "tok": {"other": "x"}}))
    assert result.target is None
    assert result.problem == Problem("DependencyNotReady", "key value of Secret tok not found")


def test_quota_problem_is_kept_when_a_secret_is_also_missing() -> None:
    siblings = [webhook(n, f"2026-01-0{i + 1}T00:00:00Z") for i, n in enumerate(("a", "b", "c"))]
    result = resolve(siblings[2], FakeKube({}), registry("Basic"), siblings)
    assert result.problem is not None
    assert result.problem.reason == "QuotaExceeded"


def test_binary_signing_key_is_used_as_stored() -> None:
    raw = bytes(range(256))[::7]  # not valid UTF-8
    kube = FakeKube({})
    body = webhook("hook", "2026-01-01T00:00:00Z")

    def get(api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return {"data": {"secret": b64(raw)}} if name == "hook-signing" else None

    kube.get = get  # type: ignore[method-assign]
    result = resolve(body, kube)
    assert result.target is not None
    assert result.target.signing_key == raw


def test_header_secret_that_is_not_text_is_dependency_not_ready() -> None:
    body = webhook(
        "hook",
        "2026-01-01T00:00:00Z",
        customHeaders=[{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "value"}}}],
    )
    kube = FakeKube(SIGNING)
    real_get = kube.get

    def get(api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return {"data": {"value": b64(b"\xff\xfe")}} if name == "tok" else real_get(api_version, kind, namespace, name)

    kube.get = get  # type: ignore[method-assign]
    result = resolve(body, kube)
    assert result.target is None
    assert result.problem == Problem("DependencyNotReady", "key value of Secret tok is not UTF-8 text")


def test_header_value_from_a_file_loses_its_final_newline() -> None:
    body = webhook(
        "hook",
        "2026-01-01T00:00:00Z",
        customHeaders=[{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "value"}}}],
    )
    result = resolve(body, FakeKube(SIGNING | {"tok": {"value": "Bearer abc\n"}}))
    assert result.target is not None and result.target.headers == (("Authorization", "Bearer abc"),)


def test_header_value_with_a_line_break_inside_is_refused_without_quoting_it() -> None:
    body = webhook(
        "hook",
        "2026-01-01T00:00:00Z",
        customHeaders=[{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "value"}}}],
    )
    result = resolve(body, FakeKube(SIGNING | {"tok": {"value": "Bearer abc\r\nX-Evil: 1"}}))
    assert result.target is None and result.problem is not None
    assert result.problem.reason == "DependencyNotReady" and "abc" not in result.problem.message


def test_service_uri_from_a_secret_must_be_an_http_url() -> None:
    body = webhook("hook", "2026-01-01T00:00:00Z", serviceUriSecretRef={"name": "url", "key": "u"})
    body["spec"].pop("serviceUri", None)
    result = resolve(body, FakeKube(SIGNING | {"url": {"u": "ftp://example.com/x?token=zzz"}}))
    assert result.target is None and result.problem is not None
    assert "is not an http:// or https:// URL" in result.problem.message and "zzz" not in result.problem.message
    result = resolve(body, FakeKube(SIGNING | {"url": {"u": " https://example.com/x?token=zzz\n"}}))
    assert result.target is not None and result.target.url == "https://example.com/x?token=zzz"
