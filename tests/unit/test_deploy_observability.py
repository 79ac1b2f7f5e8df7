"""The dashboard, the alert rules and the console's Kubernetes component, checked offline: they
parse, they are complete, and they fit the code (the metric names themselves are checked
against a real scrape in tests/integration/test_metrics_deploy.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

from dispatcher.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dispatcher.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
CONSOLE = ROOT / "deploy" / "k8s" / "console"
METRIC = re.compile(r"\b((?:dispatcher|process)_[a-z0-9_]+)\b")


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    return exprs + [a["expr"] for a in dash["annotations"]["list"]]


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return rules


def metric_names() -> set[str]:
    """Every metric name the dashboard and the alert rules use."""
    exprs = dashboard_exprs() + [r["expr"] for r in alert_rules()]
    return {m for e in exprs for m in METRIC.findall(e)}


def balanced(expr: str) -> bool:
    depth = {"(": 0, "[": 0, "{": 0}
    close = {")": "(", "]": "[", "}": "{"}
    for ch in re.sub(r'"[^"]*"', '""', expr):
        if ch in depth:
            depth[ch] += 1
        elif ch in close:
            depth[close[ch]] -= 1
            if depth[close[ch]] < 0:
                return False
    return not any(depth.values())


def test_the_dashboard_is_a_complete_grafana_dashboard() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert dash["templating"]["list"][0]["type"] == "datasource"
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}", p["title"]
    assert all(balanced(e) for e in dashboard_exprs())


def test_every_alert_rule_says_what_and_how_bad() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning", "info"), r["alert"]
        assert r["annotations"]["summary"], r["alert"]
        assert balanced(r["expr"]), r["alert"]
    wanted = {"dispatcher_provider_halted", "dispatcher_rate_limited_total",
              "dispatcher_stream_unread_jobs", "dispatcher_oldest_ready_job_age_seconds",
              "dispatcher_tracking_gave_up_total", "dispatcher_orphaned_jobs"}
    assert wanted <= {m for r in rules for m in METRIC.findall(r["expr"])}


def test_no_dashboard_or_alert_groups_by_an_unbounded_label() -> None:
    for e in dashboard_exprs() + [r["expr"] for r in alert_rules()]:
        for group in re.findall(r"by \(([^)]*)\)", e):
            assert set(map(str.strip, group.split(","))) <= {
                "provider", "window", "state", "reason", "outcome", "code", "op", "status",
                "version", "registry", "caller_id"}, e  # caller_id: the configured pool's labels


def test_alert_rules_and_the_console_component_lint_clean() -> None:
    out = subprocess.run([_bin("yamllint"), "-c", str(ROOT / "deploy" / ".yamllint"),
                          str(ALERTS), str(CONSOLE)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_console_component_matches_the_kubernetes_schemas() -> None:
    files = sorted(str(p) for p in CONSOLE.glob("*.yaml") if p.name != "kustomization.yaml")
    out = subprocess.run([_bin("kubernetes-validate"), "--strict", *files],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_console_component_fits_the_core_and_the_command_line() -> None:
    kust = yaml.safe_load((CONSOLE / "kustomization.yaml").read_text())
    assert kust["kind"] == "Component"
    assert set(kust["resources"]) == {p.name for p in CONSOLE.glob("*.yaml")} - {
        "kustomization.yaml"}
    dep = yaml.safe_load((CONSOLE / "deployment.yaml").read_text())
    pod = dep["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.cmd == "console"
    assert container["ports"][0]["containerPort"] == args.port
    core_cm = yaml.safe_load((ROOT / "deploy" / "k8s" / "configmap.yaml").read_text())
    [config] = [v for v in pod["volumes"] if v["name"] == "config"]
    assert config["configMap"]["name"] == core_cm["metadata"]["name"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(args.token_file).parent) in mounts
    svc = yaml.safe_load((CONSOLE / "service.yaml").read_text())
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_the_consoles_templates_and_static_files_ship_in_the_package() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["dispatcher"]
    pkg = ROOT / "dispatcher"
    for sub in ("templates", "static"):
        for f in (pkg / "console" / sub).iterdir():
            rel = str(f.relative_to(pkg))
            assert any(fnmatch(rel, g) for g in globs), rel


def test_metric_names_follow_the_conventions() -> None:
    for name in metric_names():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert not name.endswith("_total_total"), name


def test_no_alert_fires_on_the_age_of_ready_jobs_alone() -> None:
    """A campaign of 10,000 calls takes hours at the provider's rate: old ready jobs are
    normal. What is wrong is no progress while jobs are ready and the budget is free."""
    rules = {r["alert"]: r for r in alert_rules()}
    assert "DispatcherOldestReadyJobTooOld" not in rules
    expr = rules["DispatcherNoProgress"]["expr"]
    assert "dispatcher_oldest_ready_job_age_seconds" in expr  # jobs are ready
    assert re.search(r'unless on \(provider\)\s*\(?\s*sum by \(provider\) \(\s*increase\('
                     r'dispatcher_provider_requests_total\{op="start"\}', expr)  # no dial
    for budget in ("dispatcher_rate_window_used_ratio", "dispatcher_provider_cooldown_seconds",
                   "dispatcher_provider_halted", "dispatcher_call_slots_in_use"):
        assert budget in expr, budget  # ... while nothing of the budget stops it
