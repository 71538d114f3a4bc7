from dockyard.core.tiers import TIERS, quota_exceeded_message


def test_limits_follow_acr() -> None:
    assert [TIERS[s].webhooks for s in ("Basic", "Standard", "Premium")] == [2, 10, 500]
    assert [TIERS[s].included_storage for s in ("Basic", "Standard", "Premium")] == ["10Gi", "100Gi", "500Gi"]
    assert [TIERS[s].replications_allowed for s in ("Basic", "Standard", "Premium")] == [False, False, True]
    assert [TIERS[s].anonymous_pull for s in ("Basic", "Standard", "Premium")] == [False, True, True]


def test_quota_message_uses_acr_wording() -> None:
    assert quota_exceeded_message("webhooks", "Basic") == (
        "Quota exceeded for resource type webhooks for the registry SKU Basic"
    )
