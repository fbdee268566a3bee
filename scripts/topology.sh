#!/usr/bin/env bash
# The region's topology on one machine: each node a host of its own (a network namespace with
# its own address, joined to the others by veth and a bridge), each with its own PostgreSQL
# cluster and its own certificates from one regional CA; calls and events cross real addresses
# with mutual TLS. Run as root.
#
#   scripts/topology.sh up      build nothing; start the nodes with $TOPOLOGY_BIN
#   scripts/topology.sh down    stop everything and remove the hosts
#   scripts/topology.sh test    the topology tests of the suite (each starts its own)
# Faults, on a topology that is up (PROCESS is a name under <node>/, such as serve-review-b):
#   kill NODE PROCESS           SIGKILL, and wait until it is gone
#   revive NODE PROCESS         start it again as it was started
#   skew NODE PROCESS SECONDS   start it again with its clock SECONDS ahead (libfaketime)
#   cut NODE / heal NODE        take the node's link down / up
#   pg-restart NODE             restart the node's PostgreSQL (immediate shutdown)
#
# Nodes (addresses on 10.77.0.0/24; the machine itself is 10.77.0.1):
#   region   10.77.0.10 and 10.77.0.20: the gateway (node listener 10.77.0.10:7443, public
#            10.77.0.10:8080) and two replicas of each service (one per address, each its own
#            process: serve-filing-a on .10, serve-filing-b on .20, ...), sharing the region's
#            database; names such as `filing` resolve to both replicas, as a headless
#            Service's do in a cluster
#   urumqi   10.77.0.11: the review service of tenant 650100 on Urumqi's own database
#   kashgar  10.77.0.12: the review service of tenant 653100 on Kashgar's own database, and a
#            disclosure service as the register's witness (the region's register serves only
#            checkpoints it has cosigned)
#   department 10.77.0.13: Urumqi's market-regulation department's node, receiving referrals
# TOPOLOGY_REPLICAS=1 runs one region replica of each service instead of two;
# TOPOLOGY_PREFECTURE_NODES=0 runs no prefecture node (the region serves every tenant, and the
# register asks no witness) — the shapes whose cost `topology::cost_*` compares.
# Every node has the same configuration shape (deploy/ uses it too): `backends.<name>.url` by
# name, `tenant_backends` sending a prefecture's calls and events to its own node.
#
# Files under $TOPOLOGY_DIR (default /tmp/creditmesh-topology): ca/ (the CA),
# callers/ (client certificates for agencies and regulators, with ca.pem), <node>/ (pki,
# data, pg, configuration, logs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${TOPOLOGY_DIR:-/tmp/creditmesh-topology}
BIN=${TOPOLOGY_BIN:-$ROOT/target/debug/creditmesh}
BRIDGE=cm-br0
REPLICAS=${TOPOLOGY_REPLICAS:-2}
PREFECTURE_NODES=${TOPOLOGY_PREFECTURE_NODES:-2}
ALL_NODES=(region urumqi kashgar department)
if [ "$PREFECTURE_NODES" -eq 0 ]; then
  NODES=(region department)
  DATABASES=(region)
else
  NODES=(region urumqi kashgar department)
  # The nodes with a PostgreSQL cluster of their own (the department keeps SQLite).
  DATABASES=(region urumqi kashgar)
fi
# The region's replicas, by the name of their address.
REGION_REPLICAS=(region)
[ "$REPLICAS" -eq 1 ] || REGION_REPLICAS+=(region-b)
SERVICES=(filing review disclosure complaints datapush)
TRUST_DOMAIN=creditmesh.xinjiang

address() {
  case $1 in
    region) echo 10.77.0.10 ;;
    region-b) echo 10.77.0.20 ;;
    urumqi) echo 10.77.0.11 ;;
    kashgar) echo 10.77.0.12 ;;
    department) echo 10.77.0.13 ;;
  esac
}

port() {
  case $1 in
    filing) echo 7501 ;; review) echo 7502 ;; disclosure) echo 7503 ;;
    complaints) echo 7504 ;; datapush) echo 7505 ;;
  esac
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

in_node() {
  local node=$1
  shift
  ip netns exec "cm-$node" "$@"
}

# A process of a node, in the background, its pid kept to stop it and its command to start
# it again.
start() {
  local node=$1 name=$2
  shift 2
  mkdir -p "$DIR/$node/log"
  # The command as first started: a process started again under a skewed clock goes back
  # to it when revived.
  [ -e "$DIR/$node/$name.cmd" ] || printf '%q ' "$@" >"$DIR/$node/$name.cmd"
  # exec all the way down, so that the pid kept is the process's own.
  (exec ip netns exec "cm-$node" env -u CREDITMESH_DATABASE__URL -u CREDITMESH_CONFIG setsid "$@") \
    >>"$DIR/$node/log/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$node/$name.pid"
}

# Kills a process `start` started and waits for its end (its ports free again).
stop() {
  local pidfile="$DIR/$1/$2.pid" pid
  pid=$(cat "$pidfile")
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
    sleep 0.05
  done
  rm -f "$pidfile"
}

# Starts a process again with the command it was first started with; `$3...` go before it.
revive() {
  local node=$1 name=$2
  shift 2
  local cmd
  cmd=$(cat "$DIR/$node/$name.cmd")
  eval "start \"\$node\" \"\$name\" \"\$@\" $cmd"
}

faketime_lib() {
  local lib
  lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
  if [ -z "$lib" ]; then
    echo "topology: installing libfaketime from Debian's packages" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null 2>&1
    lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -n 1)
  fi
  echo "$lib"
}

wait_port() {
  local addr=$1 port=$2 what=$3
  for _ in $(seq 1 600); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "topology: $what ($addr:$port) did not start; its log:" >&2
  tail -n 30 "$DIR"/*/log/*.log >&2 || true
  return 1
}

hosts() {
  cat <<EOF
127.0.0.1 localhost
$(address region) filing review disclosure complaints datapush gateway region-node
$([ "$REPLICAS" -eq 1 ] || echo "$(address region-b) filing review disclosure complaints datapush")
$(address urumqi) urumqi-node review-urumqi
$(address kashgar) kashgar-node review-kashgar
$(address department) department-node
EOF
}

network_up() {
  ip link add "$BRIDGE" type bridge
  ip addr add 10.77.0.1/24 dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for node in "${NODES[@]}"; do
    ip netns add "cm-$node"
    ip link add "cm-$node-h" type veth peer name eth0 netns "cm-$node"
    ip link set "cm-$node-h" master "$BRIDGE" up
    in_node "$node" ip link set lo up
    in_node "$node" ip addr add "$(address "$node")/24" dev eth0
    in_node "$node" ip link set eth0 up
    mkdir -p "/etc/netns/cm-$node"
    hosts >"/etc/netns/cm-$node/hosts"
  done
  if [ "$REPLICAS" -ne 1 ]; then in_node region ip addr add "$(address region-b)/24" dev eth0; fi
}

# The regional CA, the callers' certificates, and each node's own service certificates.
pki_up() {
  "$BIN" pki init --dir "$DIR/ca" >/dev/null
  mkdir -p "$DIR/callers"
  issue() {
    "$BIN" pki issue --dir "$DIR/ca" "$@" >/dev/null
  }
  issue --kind agency --tenant 650100 --subject 91650102MA7XJ0003G --name agency-urumqi
  issue --kind agency --tenant 650100 --subject 91650102MA7XJ0011B --name agency-urumqi-2
  # Agencies that file while the faults last, four of each prefecture.
  local n=0 uscc
  for uscc in 91650102MA7XJ2009H 91650102MA7XJ2017C 91650102MA7XJ20257 91650102MA7XJ20332; do
    n=$((n + 1))
    issue --kind agency --tenant 650100 --subject "$uscc" --name "agency-filer-$n"
  done
  for uscc in 91653101MA78KT304Q 91653101MA78KT312K 91653101MA78KT320E 91653101MA78KT339B; do
    n=$((n + 1))
    issue --kind agency --tenant 653100 --subject "$uscc" --name "agency-filer-$n"
  done
  # The region, both prefectures, and Kashgar City (a county of Kashgar's, whose calls go to
  # Kashgar's node).
  for tenant in 650000 650100 653100 653101; do
    issue --kind regulator --tenant "$tenant" --name "regulator-$tenant"
  done
  issue --kind department --tenant 650100 --subject market-regulation --name department
  mv "$DIR"/ca/agency-* "$DIR"/ca/regulator-* "$DIR"/ca/department.* "$DIR/callers/"
  cp "$DIR/ca/ca.pem" "$DIR/callers/"
  for node in "${NODES[@]}"; do
    local pki="$DIR/$node/pki" names=()
    mkdir -p "$pki"
    case $node in
      region) names=("${SERVICES[@]}" gateway) ;;
      urumqi) names=(review) ;;
      kashgar) names=(review disclosure) ;;
      department) names=() ;;
    esac
    for name in "${names[@]}"; do
      local ips=(--ip "$(address "$node")")
      if [ "$node" = region ]; then ips+=(--ip "$(address region-b)"); fi
      issue --kind service --tenant 650000 --subject "$name" --name "service-$name" \
        --dns "$name" --dns localhost "${ips[@]}"
      mv "$DIR/ca/service-$name.pem" "$DIR/ca/service-$name.key" "$pki/"
    done
    if [ "$node" = department ]; then
      issue --kind department --tenant 650100 --subject market-regulation --name department-node \
        --server --dns department-node --ip "$(address department)"
      mv "$DIR"/ca/department-node.* "$pki/"
    fi
    cp "$DIR/ca/ca.pem" "$pki/"
    if [ -f "$DIR/ca/crl.pem" ]; then cp "$DIR/ca/crl.pem" "$pki/"; fi
  done
}

postgres_up() {
  local bin node
  bin=$(pg_bin)
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  for node in "${DATABASES[@]}"; do
    local pg="$DIR/$node/pg"
    mkdir -p "$pg"
    chown postgres: "$pg"
    runuser -u postgres -- "$bin/initdb" -D "$pg" -A trust -U postgres >/dev/null
    in_node "$node" runuser -u postgres -- "$bin/pg_ctl" -D "$pg" -l "$pg/server.log" -w \
      -o "-p 5432 -k $pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    in_node "$node" psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE creditmesh" >/dev/null
  done
}

# The configuration every node shares; `$1` is the node.
config() {
  local node=$1
  cat <<EOF
trust_domain = "$TRUST_DOMAIN"
data_dir = "$DIR/$node/data"
pki_dir = "$DIR/$node/pki"
[measures]
effective_on = "2026-01-01"
[database]
url = "postgres://postgres@127.0.0.1:5432/creditmesh"
[events]
poll_interval_ms = 100
lease_ms = 5000
[node]
listen = "$(address region):7443"
[public]
listen = "$(address region):8080"
[gateway.rate_per_second]
agency = 0
prefecture_regulator = 0
regional_regulator = 0
public = 0
EOF
  for s in "${SERVICES[@]}"; do
    printf '[backends.%s]\nurl = "https://%s:%s"\n' "$s" "$s" "$(port "$s")"
  done
  if [ "$PREFECTURE_NODES" -ne 0 ]; then
    printf '[tenant_backends."650100".review]\nurl = "https://review-urumqi:7502"\nserver_name = "review"\n'
    printf '[tenant_backends."653100".review]\nurl = "https://review-kashgar:7502"\nserver_name = "review"\n'
  fi
  cat <<EOF
[[referrals.departments]]
department = "market-regulation"
tenant = "650100"
url = "https://department-node:7601"
server_name = "department-node"
[department]
department = "market-regulation"
tenant = "650100"
listen = "$(address department):7601"
platform_url = "https://gateway:7443"
platform_server_name = "gateway"
EOF
}

# The register's witness on Kashgar's node, and the region's register asking it.
witnessing() {
  case $1 in
    kashgar)
      printf '[register]\nwitness_of = "%s"\nwitness_name = "witness.kashgar/w1"\n' \
        "$(cat "$DIR/region/pki/register-log.vkey")"
      ;;
    region)
      printf '[register]\ncosignatures_required = 1\n[[register.witnesses]]\n'
      printf 'url = "https://kashgar-node:7503"\nserver_name = "disclosure"\nverifier_key = "%s"\n' \
        "$(cat "$DIR/kashgar/pki/witness.vkey")"
      ;;
  esac
}

# `$1` node, `$2` the address its services listen on, then the services.
listening() {
  local at=$1
  shift
  for s in "$@"; do
    printf '[services.%s]\nlisten = "%s:%s"\n' "$s" "$at" "$(port "$s")"
  done
}

nodes_up() {
  # `serve` makes no keys: each node's are made once here, shared by its replicas.
  "$BIN" pki keys --dir "$DIR/region/pki" >/dev/null
  if [ "$PREFECTURE_NODES" -ne 0 ]; then
    # The witness on Kashgar's node cosigns the region's register, known by its verifier key.
    "$BIN" pki keys --dir "$DIR/kashgar/pki" --witness-name witness.kashgar/w1 >/dev/null
    { config kashgar; listening "$(address kashgar)" review disclosure; witnessing kashgar; } \
      >"$DIR/kashgar/kashgar.toml"
    start kashgar serve "$BIN" serve --services review,disclosure --config "$DIR/kashgar/kashgar.toml"
    { config urumqi; listening "$(address urumqi)" review; } >"$DIR/urumqi/urumqi.toml"
    start urumqi serve "$BIN" serve --services review --config "$DIR/urumqi/urumqi.toml"
  fi
  local replica
  for replica in "${REGION_REPLICAS[@]}"; do
    {
      config region
      listening "$(address "$replica")" "${SERVICES[@]}"
      if [ "$PREFECTURE_NODES" -ne 0 ]; then witnessing region; fi
    } >"$DIR/region/$replica.toml"
  done
  # One process per service and replica, so that one replica of one service can be lost.
  local s
  for s in "${SERVICES[@]}"; do
    start region "serve-$s-a" "$BIN" serve --services "$s" --config "$DIR/region/region.toml"
    if [ "$REPLICAS" -ne 1 ]; then
      start region "serve-$s-b" "$BIN" serve --services "$s" --config "$DIR/region/region-b.toml"
    fi
  done
  start region gateway "$BIN" gateway --config "$DIR/region/region.toml"
  config department >"$DIR/department/department.toml"
  start department serve "$BIN" department serve --config "$DIR/department/department.toml"
  for s in "${SERVICES[@]}"; do
    for replica in "${REGION_REPLICAS[@]}"; do
      wait_port "$(address "$replica")" "$(port "$s")" "$s on the region's replica at $replica"
    done
  done
  if [ "$PREFECTURE_NODES" -ne 0 ]; then
    wait_port "$(address urumqi)" 7502 "review on urumqi"
    wait_port "$(address kashgar)" 7502 "review on kashgar"
    wait_port "$(address kashgar)" 7503 "the witness on kashgar"
  fi
  wait_port "$(address department)" 7601 "the department's node"
  wait_port "$(address region)" 7443 "the gateway"
}

up() {
  [ "$(id -u)" -eq 0 ] || { echo "topology: run as root (network namespaces)" >&2; exit 1; }
  [ -x "$BIN" ] || { echo "topology: no binary at $BIN (cargo build, or set TOPOLOGY_BIN)" >&2; exit 1; }
  down 2>/dev/null || true
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  network_up
  pki_up
  postgres_up
  nodes_up
  echo "topology: up; gateway at $(address region):7443 (node) and :8080 (public); files in $DIR"
}

down() {
  local pidfile
  for pidfile in "$DIR"/*/*.pid; do
    [ -f "$pidfile" ] || continue
    kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  # Anything else still running in a node's namespace (setsid children, PostgreSQL).
  for node in "${ALL_NODES[@]}"; do
    ip netns pids "cm-$node" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  sleep 0.2
  for node in "${ALL_NODES[@]}"; do
    ip netns del "cm-$node" 2>/dev/null || true
    rm -rf "/etc/netns/cm-$node"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$DIR"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  kill) stop "$2" "$3" ;;
  revive) revive "$2" "$3" ;;
  skew)
    lib=$(faketime_lib)
    stop "$2" "$3"
    revive "$2" "$3" env "LD_PRELOAD=$lib" "FAKETIME=+${4}s" FAKETIME_DONT_FAKE_MONOTONIC=1 \
      FAKETIME_NO_CACHE=1
    ;;
  cut) ip link set "cm-$2-h" down ;;
  heal) ip link set "cm-$2-h" up ;;
  pg-restart)
    in_node "$2" runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$DIR/$2/pg" -m immediate -w \
      restart >/dev/null
    ;;
  test)
    # Each test starts its own topology and removes it (TOPOLOGY=running makes a test use
    # one already up instead, for one test at a time).
    cd "$ROOT"
    cargo build --workspace --locked --tests
    cargo test --workspace --locked --test e2e -- topology --nocapture
    ;;
  *)
    echo "usage: $0 up|down|test" >&2
    exit 2
    ;;
esac
