"""Deployment files, validated offline: lint, Kubernetes schemas, and that they fit the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from dispatcher.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CORE = ["configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml"]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def test_yamllint_clean() -> None:
    out = subprocess.run([_bin("yamllint"), "-c", str(ROOT / "deploy" / ".yamllint"), str(K8S)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_core_manifests_match_the_kubernetes_schemas() -> None:
    out = subprocess.run([_bin("kubernetes-validate"), "--strict",
                          *(str(K8S / f) for f in CORE)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files


def test_configmap_holds_a_valid_configuration(tmp_path: Path) -> None:
    cm = yaml.safe_load((K8S / "configmap.yaml").read_text())
    cfg = tmp_path / "dispatcher.toml"
    cfg.write_text(cm["data"]["dispatcher.toml"])
    settings = load_settings(str(cfg))
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > settings.worker.shutdown_grace_s
    container = pod["containers"][0]
    assert container["ports"][0]["containerPort"] == settings.worker.http_port
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    key_file = settings.providers["default"].api_key_file
    assert key_file and os.path.dirname(key_file) in mounts
    assert scaled_on()[0] == ("dispatcher_jobs", {"state": "queued"})


def scaled_on() -> tuple[tuple[str, dict[str, str]], str]:
    """The metric the ScaledObject scales on (name, label matchers) and its threshold."""
    keda = yaml.safe_load((K8S / "keda-scaledobject.yaml").read_text())
    [trig] = keda["spec"]["triggers"]
    assert trig["type"] == "prometheus"
    query = trig["metadata"]["query"]
    m = re.fullmatch(r"max\((\w+)\{([^}]*)\}\)", query.strip())
    assert m, query  # a deployment gauge: the same on every pod, so max
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
    return (m.group(1), labels), trig["metadata"]["threshold"]


def test_autoscaling_is_on_ready_jobs_not_on_the_streams_lag() -> None:
    """Jobs are read from the stream at once: its lag stays 0 with thousands waiting."""
    (name, labels), threshold = scaled_on()
    assert name != "dispatcher_stream_unread_jobs" and labels == {"state": "queued"}
    assert int(threshold) > 0


def test_dockerfile_copies_paths_that_exist() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for part in src.split():
            assert (ROOT / part).exists(), part
