"""hack/bench_probes.py and the pure parts of hack/bench_registry.py, without a cluster."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import bench_registry
from bench_probes import (
    Memory,
    MemorySampler,
    Seen,
    counter_delta,
    cpu_seconds,
    latency_line,
    machine_cpu,
    nodes_for,
    parse_prometheus,
    pct,
    phase_cpu_line,
    read_memory,
    timeline_line,
)

SCRAPE = """\
# HELP dockyard_kube_requests_total Requests to the Kubernetes API by verb and kind.
# TYPE dockyard_kube_requests_total counter
dockyard_kube_requests_total{kind="Deployment",verb="get"} 120.0
dockyard_kube_requests_total{kind="Registry/status",verb="patch"} 3.0
dockyard_kube_requests_created{kind="Deployment",verb="get"} 1.7e9
dockyard_reconcile_total{kind="Registry",result="success"} 40.0
odd_total{message="say \\"hi\\"",path="a,b"} 1
plain_gauge 2.5
"""


def test_pct_is_nearest_rank() -> None:
    assert pct([3, 1, 2], 50) == 2
    assert pct(range(1, 101), 99) == 99
    assert pct([5], 99) == 5
    with pytest.raises(ValueError):
        pct([], 50)


def test_latency_line_in_milliseconds_and_empty() -> None:
    assert "p50=   100.0 ms" in latency_line("x", [0.1, 0.1, 0.2])
    assert latency_line("nothing", []).endswith("n=0")


def test_parse_prometheus_by_name_and_sorted_labels() -> None:
    samples = parse_prometheus(SCRAPE)
    requests = samples["dockyard_kube_requests_total"]
    assert requests[(("kind", "Deployment"), ("verb", "get"))] == 120
    assert requests[(("kind", "Registry/status"), ("verb", "patch"))] == 3
    assert samples["odd_total"] == {(("message", 'say "hi"'), ("path", "a,b")): 1}
    assert samples["plain_gauge"] == {(): 2.5}
    only = parse_prometheus(SCRAPE, ["dockyard_reconcile_total"])
    assert list(only) == ["dockyard_reconcile_total"]


def test_counter_delta_sums_growth_by_the_chosen_labels() -> None:
    before = parse_prometheus(SCRAPE)["dockyard_kube_requests_total"]
    after = dict(before)
    after[(("kind", "Deployment"), ("verb", "get"))] = 220
    after[(("kind", "Service"), ("verb", "get"))] = 50  # first seen after: counts from 0
    assert counter_delta(before, after, ["verb"]) == {("get",): 150}
    assert counter_delta(before, after, ["verb", "kind"]) == {("get", "Deployment"): 100, ("get", "Service"): 50}
    assert counter_delta(before, before, ["verb"]) == {}


def _proc(tmp_path: Path, pid: int, status: str | None = None, stat: str | None = None) -> str:
    directory = tmp_path / str(pid)
    directory.mkdir()
    if status is not None:
        (directory / "status").write_text(status)
    if stat is not None:
        (directory / "stat").write_text(stat)
    return str(tmp_path)


def test_read_memory_takes_vmrss_and_vmhwm_in_bytes(tmp_path: Path) -> None:
    proc = _proc(tmp_path, 42, status="Name:\tpython\nVmHWM:\t  302000 kB\nVmRSS:\t  250000 kB\nThreads:\t9\n")
    assert read_memory(42, proc) == Memory(rss=250000 * 1024, hwm=302000 * 1024)
    assert read_memory(43, proc) is None
    zombie = _proc(tmp_path, 44, status="Name:\tpython\nState:\tZ (zombie)\n")
    assert read_memory(44, zombie) is None


def test_read_memory_of_this_process() -> None:
    memory = read_memory(os.getpid())
    assert memory is not None and 0 < memory.rss <= memory.hwm


def test_cpu_seconds_survives_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    fields = ["S", *["0"] * 10, str(3 * tick), str(tick), str(2 * tick), "0", *["0"] * 30]
    proc = _proc(tmp_path, 7, stat=f"7 (python (my bench)) {' '.join(fields)}\n")
    assert cpu_seconds(7, proc) == 4
    assert cpu_seconds(7, proc, children=True) == 6
    assert cpu_seconds(8, proc) is None
    assert (cpu_seconds(os.getpid()) or 0) > 0


def test_memory_sampler_keeps_peaks_by_phase_and_the_highest_vmhwm() -> None:
    values = iter([100, 300, 200, 150, 150, 150, 150, 150, 150, 150])

    def fake(pid: int) -> Memory | None:
        rss = next(values, 150)
        return Memory(rss=rss, hwm=rss + 1)

    sampler = MemorySampler(1, read=fake)
    sampler.sample()
    middle = time.monotonic()
    sampler.sample()
    sampler.sample()
    assert sampler.peak() == 300
    assert sampler.peak(middle) == 300
    assert sampler.latest() == 200
    assert sampler.hwm == 301
    assert "peak 0 MiB" in sampler.describe(time.monotonic() + 10)


def test_seen_wait_reports_what_is_missing_and_progress() -> None:
    seen = Seen()
    seen.mark("ready", "a", at=10.0)
    seen.mark("ready", "a", at=20.0)  # the first time counts
    assert seen.get("ready", "a") == 10.0
    reports: list[int] = []
    missing = seen.wait("ready", ["a", "b"], 0.3, progress=lambda n, _: reports.append(n), every=0.1, poll=0.02)
    assert missing == ["b"]
    assert reports and set(reports) == {1}
    threading.Timer(0.1, seen.mark, args=("ready", "b")).start()
    assert seen.wait("ready", ["a", "b"], 5, poll=0.02) == []
    assert seen.count("ready", ["a", "b", "c"]) == 2
    assert seen.spans("ready", {"a": 4.0, "c": 1.0}) == [6.0]
    assert seen.last("ready", ["a"]) == 10.0
    assert seen.last("ready", ["c"]) is None


def test_timeline_tells_when_each_share_was_reached() -> None:
    seen = Seen()
    for i, at in enumerate((101.0, 104.0, 102.0, 110.0)):
        seen.mark("ready", f"r{i}", at=at)
    reached = seen.reached("ready", ["r0", "r1", "r2", "r3", "r4"], 100.0, (0.2, 0.6, 0.8, 1.0))
    assert reached == [(0.2, 1.0), (0.6, 4.0), (0.8, 10.0), (1.0, None)]
    assert timeline_line("ready", reached) == "ready: 20 % 1.0 s, 60 % 4.0 s, 80 % 10.0 s, 100 % -"


def test_failed_requests_are_the_answers_not_2xx_but_watches() -> None:
    def labels(code: str, verb: str, resource: str) -> tuple[tuple[str, str], ...]:
        return (("code", code), ("verb", verb), ("resource", resource), ("subresource", ""))

    before = {labels("409", "POST", "secrets"): 5.0, labels("201", "POST", "secrets"): 10.0}
    after = {
        labels("409", "POST", "secrets"): 8.0,
        labels("201", "POST", "secrets"): 30.0,
        labels("404", "GET", "registries"): 2.0,
        labels("0", "WATCH", "pods"): 4.0,
    }
    assert bench_registry.failed_requests(before, after) == {
        ("409", "POST", "secrets", ""): 3.0,
        ("404", "GET", "registries", ""): 2.0,
    }


def test_nodes_for_every_pod_plus_a_spare() -> None:
    assert nodes_for(2100, 110) == 21
    assert nodes_for(110, 110) == 2
    assert nodes_for(1, 110, spare=0) == 1


def test_bench_defaults_are_the_full_run_and_size_the_cluster() -> None:
    args = bench_registry.parse_args([])
    assert (args.registries, args.webhooks, args.idle_seconds, args.deployments) == (1000, 1000, 600, 1000)
    assert args.sequential == 200
    assert args.nodes == nodes_for(1000, 110)
    quick = bench_registry.parse_args(["--burst", "100", "--webhooks", "100", "--idle-seconds", "60"])
    assert (quick.registries, quick.deployments, quick.idle_seconds) == (100, 100, 60)
    assert bench_registry.parse_args(["--nodes", "3"]).nodes == 3
    assert args.settled_seconds == 2 * args.drift_interval == 120
    assert bench_registry.parse_args(["--drift-interval", "10"]).settled_seconds == 20


def test_watch_handlers_mark_what_the_phases_wait_for() -> None:
    seen = Seen()
    bench_registry.on_deployment(seen, {"metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {}})
    assert seen.get("deployment", "d") is not None and seen.get("available", "d") is None
    bench_registry.on_deployment(
        seen, {"metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {"availableReplicas": 1}}
    )
    assert seen.get("available", "d") is not None
    bench_registry.on_replicaset(seen, {"metadata": {"ownerReferences": [{"kind": "Deployment", "name": "d"}]}})
    assert seen.get("rs-of", "d") is not None
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    bench_registry.on_registry(seen, {"metadata": {"name": "r"}, "status": {"conditions": []}})
    assert seen.get("registry", "r") is not None and seen.get("ready", "r") is None
    bench_registry.on_registry(seen, {"metadata": {"name": "r"}, **ready})
    bench_registry.on_webhook(seen, {"metadata": {"name": "h"}, **ready})
    assert seen.get("ready", "r") is not None and seen.get("webhook-ready", "h") is not None


def test_webhooks_point_at_loopback_and_registries_are_standard() -> None:
    hook = bench_registry.webhook_body("h1", "b1")
    assert hook["spec"]["serviceUri"].startswith("http://127.0.0.1:")
    assert hook["spec"]["registryRef"] == {"name": "b1"}
    assert bench_registry.registry_body("b1")["spec"]["sku"] == "Standard"
    requests = bench_registry.deployment_body("d")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert requests == {"requests": bench_registry.POD_REQUESTS}


def test_machine_cpu_counts_idle_and_iowait_as_not_busy(tmp_path: Path) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    values = [10, 0, 5, 80, 5, 0, 0, 0, 7, 0]
    (tmp_path / "stat").write_text("cpu  " + " ".join(str(v * tick) for v in values) + "\ncpu0 1 2 3\n")
    assert machine_cpu(str(tmp_path)) == (15, 100)
    busy, total = machine_cpu()
    assert 0 <= busy <= total


def test_phase_cpu_line_names_each_process_and_how_busy_the_machine_was() -> None:
    before = ({"operator": 10.0, "kube-apiserver": 20.0}, (100.0, 400.0))
    after = ({"operator": 40.0, "kube-apiserver": 80.0, "bench": 3.0}, (190.0, 500.0))
    assert phase_cpu_line(before, after) == (
        "CPU seconds in this phase: kube-apiserver 60, operator 30, bench 3; machine busy 90 s, 90 % of all CPUs"
    )
