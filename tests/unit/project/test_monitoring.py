"""The compose profile ``monitoring``, read: Prometheus's configuration, Grafana's provisioning and dashboard refer to
each other, to the compose services, and only to metrics and labels the code exports."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the test deps
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import METRICS_PATH, PREFIX, AgentMeters, DatagenCollector, metrics_registry
from app.stats import EmissionStats
from app.truth import MinuteCounts
from tests.unit.project.support import compose_default, interpolate, published_ports, service

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
PROVISIONING = MONITORING / "grafana" / "provisioning"
DASHBOARDS = MONITORING / "grafana" / "dashboards"
#: Where the prom/prometheus image reads its configuration.
PROMETHEUS_CONFIG_PATH = "/etc/prometheus/prometheus.yml"
#: Where Grafana reads provisioning files.
GRAFANA_PROVISIONING_PATH = "/etc/grafana/provisioning"
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}

_METRIC = re.compile(rf"\b({PREFIX}[a-z0-9_]+)\b(?:\{{([^}}]*)\}})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@cache
def exported() -> dict[str, set[str]]:
    """Every sample name the code exports, with its label names: the collector's output with every figure filled."""
    stats = EmissionStats(state="running", shards=[0], target_eps=1.0, group_target_eps=1.0)
    stats.add("orders.v1", 1, now=0.0)
    stats.bad_records["undecodable"] += 1
    stats.agents.update({"orders decided": 1})
    stats.ledger.update({"backlog": 1})
    meters = AgentMeters()
    meters.producers["agents"] = lambda: 0
    meters.dead_letter("undecodable")
    for agent in ("orders", "stock"):
        batches = meters.batches(agent)
        batches.decided(1, 0.01)
        batches.delivered(0.01)
    counted = MinuteCounts()
    counted.add("orders.v1", "orders", {"quantity": 1, "amount": 100, "currency": "USD"}, True, None)
    registry = metrics_registry(DatagenCollector(stats, meters, lambda: {"orders.v1": 0}, kinds=lambda: counted))
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


@cache
def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))


@cache
def datasources() -> list[dict[str, Any]]:
    found = []
    for path in sorted((PROVISIONING / "datasources").glob("*.y*ml")):
        found += yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    return found


@cache
def providers() -> list[dict[str, Any]]:
    found = []
    for path in sorted((PROVISIONING / "dashboards").glob("*.y*ml")):
        found += yaml.safe_load(path.read_text(encoding="utf-8"))["providers"]
    return found


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))]


def targets() -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every panel of every dashboard."""
    panels = [panel for board in dashboards() for panel in board["panels"]]
    return [(panel["title"], target) for panel in panels for target in panel["targets"]]


def mounts(name: str) -> dict[str, Path]:
    """Container path -> host path (from the repository root) of service ``name``'s bind mounts."""
    found = {}
    for volume in service(name).get("volumes", []):
        source, target, *_ = interpolate(volume).split(":")
        if source.startswith("."):
            found[target] = (ROOT / source).resolve()
    return found


# ----- Prometheus


def test_prometheus_reads_the_repository_s_configuration() -> None:
    assert mounts("prometheus").get(PROMETHEUS_CONFIG_PATH) == PROMETHEUS_CONFIG


def test_prometheus_scrapes_the_metrics_view_of_every_datagen_container() -> None:
    [job] = [job for job in prometheus_config()["scrape_configs"] if job.get("metrics_path") == METRICS_PATH]
    [discovery] = job["dns_sd_configs"]
    assert discovery["type"] == "A"
    assert discovery["names"] == ["datagen"]  # the service name: one address per (scaled) container
    assert "datagen" in service("datagen")["profiles"]
    assert discovery["port"] == int(compose_default("WEB_PORT"))


def test_prometheus_scrapes_well_within_the_10_s_rate_window() -> None:
    scrape = prometheus_config()["global"]["scrape_interval"]
    assert re.fullmatch(r"\d+s", scrape)
    assert int(scrape[:-1]) <= 5


# ----- Grafana's provisioning


def test_grafana_reads_the_repository_s_provisioning_and_dashboards() -> None:
    grafana = mounts("grafana")
    assert grafana.get(GRAFANA_PROVISIONING_PATH) == PROVISIONING
    [provider] = providers()
    assert provider["type"] == "file"
    assert grafana.get(provider["options"]["path"]) == DASHBOARDS
    home = PurePosixPath(service("grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert grafana.get(str(home.parent)) == DASHBOARDS
    assert (DASHBOARDS / home.name).is_file()


def test_the_data_source_is_the_compose_prometheus() -> None:
    [source] = datasources()
    assert source["type"] == "prometheus"
    url = urlsplit(source["url"])
    assert url.hostname == "prometheus"
    assert url.port in published_ports("prometheus")  # the container port Prometheus listens on
    assert set(service("grafana")["depends_on"]) == {"prometheus"}
    assert source["jsonData"]["timeInterval"] == prometheus_config()["global"]["scrape_interval"]


def test_every_panel_and_query_uses_the_provisioned_data_source() -> None:
    [source] = datasources()
    for board in dashboards():
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == source["uid"], panel["title"]


# ----- the dashboard


def test_the_dashboard_is_well_formed() -> None:
    [board] = dashboards()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


@pytest.mark.parametrize(("title", "target"), targets(), ids=[f"{t}:{q['refId']}" for t, q in targets()])
def test_every_query_names_metrics_and_labels_the_code_exports(title: str, target: dict[str, Any]) -> None:
    expr = target["expr"]
    names = exported()
    used = _METRIC.findall(expr)
    assert used, f"{title}: {expr} reads no metric of ours"
    labels = set(TARGET_LABELS)
    for metric, matchers in used:
        assert metric in names, f"{title}: {metric} is not exported (exported: {sorted(names)})"
        labels |= names[metric]
        unknown = set(_MATCHER.findall(matchers)) - names[metric] - TARGET_LABELS
        assert not unknown, f"{title}: {metric} has no label {unknown}"
    for group in _BY.findall(expr):
        grouped = {label.strip() for label in group.split(",") if label.strip()}
        assert grouped <= labels, f"{title}: grouped by {grouped - labels}, which {expr} does not have"
    legend = set(_LEGEND.findall(target.get("legendFormat", "")))
    assert legend <= labels, f"{title}: the legend names {legend - labels}"


@pytest.mark.parametrize(
    ("shows", "metric"),
    [
        ("the rate emitted", "events_emitted_total"),
        ("the group's target", "group_target_events_per_second"),
        ("each worker's target", "target_events_per_second"),
        ("the lag", "consumer_lag_records"),
        ("the backlog", "ledger_items"),
        ("dead letters", "dead_letters_total"),
        ("batch durations", "agent_batch_duration_seconds_bucket"),
    ],
)
def test_the_dashboard_shows(shows: str, metric: str) -> None:
    assert PREFIX + metric in exported()
    read = {name for _, target in targets() for name, _ in _METRIC.findall(target["expr"])}
    assert PREFIX + metric in read, f"no panel shows {shows}"
