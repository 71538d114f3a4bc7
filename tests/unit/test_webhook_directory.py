from dockyard.webhooks.directory import Target, WebhookDirectory, WebhookEntry
from dockyard.webhooks.scope import EventFilter


def entry(uid: str, registry: str = "hub", namespace: str = "team") -> WebhookEntry:
    return WebhookEntry(
        uid=uid,
        namespace=namespace,
        name=f"hook-{uid}",
        registry=registry,
        filter=EventFilter(frozenset({"push"}), "", True),
        max_attempts=3,
        timeout_seconds=5.0,
        target=None,
    )


def test_entries_are_found_by_registry() -> None:
    directory = WebhookDirectory()
    directory.put(entry("a"))
    directory.put(entry("b", registry="other"))
    directory.put(entry("c", namespace="elsewhere"))
    assert [e.uid for e in directory.for_registry("team", "hub")] == ["a"]


def test_a_deleted_webhook_cannot_come_back() -> None:
    directory = WebhookDirectory()
    directory.put(entry("a"))
    directory.remove("a")
    directory.put(entry("a"))
    directory.load("team", [entry("a"), entry("b")])
    assert directory.get("a") is None
    assert directory.get("b") is not None


def test_load_keeps_what_handlers_put_meanwhile_and_runs_once() -> None:
    directory = WebhookDirectory()
    newer = entry("a")
    directory.put(newer)
    directory.load("team", [entry("a", registry="stale")])
    assert directory.get("a") == newer and directory.is_loaded("team")
    directory.load("team", [entry("z")])
    assert directory.get("z") is None


def test_redact_covers_the_forms_an_exception_message_quotes() -> None:
    target = Target(
        url="https://hooks.example.com/x?token=abc123",
        headers=(("Authorization", "Bearer s3cr3t\n"),),
        signing_key=b"k",
    )
    text = target.redact(
        "failed https://hooks.example.com/x?token=abc123 with b'Bearer s3cr3t\\n' and 'Bearer s3cr3t\\n'"
    )
    assert "abc123" not in text and "s3cr3t" not in text


def test_an_older_generation_does_not_replace_a_newer_one() -> None:
    import dataclasses

    directory = WebhookDirectory()
    newer = dataclasses.replace(entry("a"), generation=3)
    directory.put(newer)
    directory.put(dataclasses.replace(entry("a", registry="old"), generation=2))
    assert directory.get("a") == newer
    target = Target(url="https://example.com/", headers=(), signing_key=b"k")
    assert directory.replace_target("a", 2, target) is None
    replaced = directory.replace_target("a", 3, target)
    assert replaced is not None and directory.get("a") == replaced and replaced.target == target
