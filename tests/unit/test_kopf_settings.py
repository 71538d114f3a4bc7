import kopf

from dockyard.main import FINALIZER, configure_kopf
from dockyard.settings import OperatorSettings


def _essence(annotations: dict[str, str]) -> dict:  # type: ignore[type-arg]
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    storage = settings.persistence.diffbase_storage
    body = kopf.Body(
        {
            "apiVersion": "dockyard.dev/v1alpha1",
            "kind": "Webhook",
            "metadata": {"name": "hook", "annotations": annotations},
            "spec": {"enabled": True},
        }
    )
    return dict(storage.build(body=body))


def test_user_annotations_under_dockyard_dev_are_compared_so_they_trigger_updates() -> None:
    # kopf marks its own prefix as managed and drops every annotation under it from the diff base
    essence = _essence(
        {
            "dockyard.dev/ping": "1",
            "kopf.dockyard.dev/kopf-managed": "yes",
            "kopf.dockyard.dev/last-handled-configuration": "{}",
        }
    )
    assert essence["metadata"]["annotations"] == {"dockyard.dev/ping": "1"}


def test_the_finalizer_stays_under_dockyard_dev() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    assert settings.persistence.finalizer == FINALIZER == "dockyard.dev/finalizer"


def test_children_are_watched_by_label_on_the_server() -> None:
    from kopf._cogs.structs.references import Resource

    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())

    def selectors(group: str, plural: str, kind: str) -> list[str]:
        resource = Resource(group=group, version="v1", plural=plural, kind=kind, namespaced=True)
        return list(settings.watching.label_selectors.collect(resource))

    assert selectors("", "secrets", "Secret") == ["app.kubernetes.io/managed-by=dockyard"]
    assert selectors("apps", "deployments", "Deployment") == ["app.kubernetes.io/managed-by=dockyard"]
    assert selectors("apps", "daemonsets", "DaemonSet") == ["app.kubernetes.io/managed-by=dockyard"]
    assert selectors("dockyard.dev", "registries", "Registry") == [], "Dockyard's own kinds are watched whole"


def test_every_cached_child_kind_is_watched_by_label() -> None:
    from dockyard.core.cache import CHILD_INDEX
    from dockyard.main import CHILD_RESOURCES

    watched = {(group, version) for group, version, _ in CHILD_RESOURCES}
    assert {tuple(api.split("/")) if "/" in api else ("", api) for api, _ in CHILD_INDEX} <= watched
    assert len(CHILD_RESOURCES) == len(CHILD_INDEX)


def test_kopf_waits_for_its_own_patch_longer_than_a_burst_lags_the_watch() -> None:
    # With kopf's 5 s, a 1,000-registry burst (the Registry watch seconds behind) handed kopf the
    # event of our own status write, older than its annotation patch, as "never handled": every
    # registry's creation ran again (0.6-0.9 extra reconciles, status writes and Events each).
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    assert settings.persistence.consistency_timeout >= 60


def test_kopf_lets_an_idle_object_worker_go_sooner_than_its_default() -> None:
    # A worker holds its last event's parsed body while it idles: kopf's 5 s kept one for every
    # object of the burst's last seconds alive at once.
    settings = kopf.OperatorSettings()
    default = settings.queueing.idle_timeout
    configure_kopf(settings, OperatorSettings())
    assert 0 < settings.queueing.idle_timeout < default
