"""Deployment files, validated offline: lint, Kubernetes schemas, and that they fit the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from dispatcher.config.settings import load_settings

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


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context: the last pattern that
    matches it (or one of its parent directories) decides, ``!`` lets it back in."""
    from fnmatch import fnmatch
    out = False
    parts = path.split("/")
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        if any(fnmatch("/".join(parts[:i]), pat) for i in range(1, len(parts) + 1)):
            out = not neg
    return out


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_the_build_context_leaves_out_the_virtualenv_git_and_caches() -> None:
    pats = dockerignore()
    for path in (".venv/bin/python", ".git/HEAD", "dispatcher/__pycache__/cli.cpython-311.pyc",
                 "dispatcher/cli/__pycache__/jobs.cpython-311.pyc", ".mypy_cache/3.11/x.json",
                 ".pytest_cache/v/x", ".ruff_cache/x", ".hypothesis/examples/x",
                 "dispatcher.egg-info/PKG-INFO", "tests/conftest.py"):
        assert ignored(path, pats), path
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for part in src.split():
            assert not ignored(part, pats), part
    assert not ignored("dispatcher/lua/push.lua", pats)


LOCK = ROOT / "requirements.lock"
TEST_ONLY = {"pytest", "mypy", "hypothesis", "ruff", "playwright", "yamllint", "jsonschema",
             "kubernetes-validate", "pytest-asyncio"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_image_installs_exact_versions_from_the_lock_file() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", b) for b in bases)
    assert "requirements.lock" in text and "--no-deps" in text
    pins = dict(ln.split("==") for ln in LOCK.read_text().splitlines()
                if ln and not ln.startswith("#"))
    names = {_norm(n) for n in pins}
    assert all(re.fullmatch(r"\d[\w.+-]*", v) for v in pins.values()), pins
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(re.split(r"[<>=\[;! ]", d)[0]) for d in project["dependencies"]}
    assert wanted <= names, wanted - names
    assert "dispatcher" not in names and not names & {_norm(n) for n in TEST_ONLY}


def test_the_image_bakes_in_no_configuration_and_no_python_healthcheck() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert not re.search(r"^COPY .*config", text, re.M)
    assert not re.search(r"^HEALTHCHECK .*python", text, re.M)


def test_the_docs_give_the_command_that_creates_the_provider_keys_secret() -> None:
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    [secret] = [v["secret"]["secretName"] for v in
                deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    cm = yaml.safe_load((K8S / "configmap.yaml").read_text())["data"]["dispatcher.toml"]
    key_files = re.findall(r'_file = "/var/run/secrets/dispatcher/([^"]+)"', cm)
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "deploy.md").read_text()
    lines = re.findall(rf"kubectl [^\n]*create secret generic {secret} [^\n]*", docs)
    assert any(all(f"--from-file={name}=" in line for name in key_files) for line in lines), \
        (secret, key_files, lines)
