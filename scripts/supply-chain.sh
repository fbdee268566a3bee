#!/usr/bin/env bash
# The dependencies, checked and listed: `cargo deny` holds every crate's licence to the list in
# deny.toml and its source to crates.io (advisories need a database fetched from outside the
# package registries, so they are not checked here); `cargo cyclonedx` writes the binary's
# software bill of materials (CycloneDX 1.5 JSON) to target/sbom/creditmesh.cdx.json, which is
# checked against Cargo.lock; and that the gateway and the website compile no storage. Both
# tools are installed at pinned versions when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DENY_VERSION=0.20.2
CYCLONEDX_VERSION=0.5.9

tool() {
  local crate=$1 version=$2
  if ! cargo "${crate#cargo-}" --version 2>/dev/null | grep -qF "$version"; then
    echo "supply-chain: installing $crate $version"
    cargo install --quiet --locked "$crate" --version "$version"
  fi
}
tool cargo-deny "$DENY_VERSION"
tool cargo-cyclonedx "$CYCLONEDX_VERSION"

echo "supply-chain: licences, bans and sources (cargo deny)"
cargo deny --locked check --hide-inclusion-graph licenses bans sources

echo "supply-chain: the gateway and the website compile no storage (sqlx, object_store)"
for crate in creditmesh-gateway creditmesh-web; do
  found=$(cargo tree --locked -p "$crate" -e normal --prefix none | grep -E '^(sqlx|sqlx-core|object_store) ' | sort -u || true)
  if [ -n "$found" ]; then
    echo "supply-chain: $crate depends on storage: $found" >&2
    exit 1
  fi
done

echo "supply-chain: the bill of materials of creditmesh (CycloneDX)"
cargo cyclonedx --manifest-path creditmesh/Cargo.toml --format json --spec-version 1.5 \
  --target x86_64-unknown-linux-gnu --no-build-deps --override-filename creditmesh.cdx --quiet
mkdir -p target/sbom
mv creditmesh/creditmesh.cdx.json target/sbom/creditmesh.cdx.json
# cyclonedx writes one beside every member of the workspace; only the binary's is kept.
find . -name creditmesh.cdx.json -not -path './target/*' -delete
python3 - target/sbom/creditmesh.cdx.json Cargo.lock <<'PY'
import json
import sys
import tomllib

bom = json.load(open(sys.argv[1]))
lock = tomllib.load(open(sys.argv[2], "rb"))
locked = {(p["name"], p["version"]) for p in lock["package"]}
version = next(p["version"] for p in lock["package"] if p["name"] == "creditmesh")
problems = []
if bom.get("bomFormat") != "CycloneDX" or bom.get("specVersion") != "1.5":
    problems.append(f"not CycloneDX 1.5: {bom.get('bomFormat')} {bom.get('specVersion')}")
top = bom["metadata"]["component"]
if (top["name"], top.get("version")) != ("creditmesh", version):
    problems.append(f"describes {top['name']} {top.get('version')}, not creditmesh {version}")
components = bom.get("components", [])
for c in components:
    what = f"{c['name']} {c['version']}"
    if (c["name"], c["version"]) not in locked:
        problems.append(f"{what}: not in Cargo.lock")
    if c.get("purl") != f"pkg:cargo/{c['name']}@{c['version']}" and not c.get("purl", "").startswith(f"pkg:cargo/{c['name']}@{c['version']}?"):
        problems.append(f"{what}: purl {c.get('purl')}")
    if not c.get("licenses"):
        problems.append(f"{what}: no licence")
named = {c["name"] for c in components}
for needed in ("tonic", "prost", "tokio", "rustls", "sqlx", "opentelemetry", "tower"):
    if needed not in named:
        problems.append(f"{needed}: missing")
for p in problems:
    print(f"supply-chain: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"supply-chain: {len(components)} components, each locked, with its purl and licence")
PY
