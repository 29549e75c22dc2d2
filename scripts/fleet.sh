#!/usr/bin/env bash
# fleet.sh: a small fleet of bare machines for the test suite: Debian 12 (bookworm), Ubuntu
# 24.04 (noble) and Debian 13 (trixie), each booted by systemd-nspawn with systemd as PID 1, on
# an overlay over a base root built once, in a network namespace of its own on a host bridge.
# Nodes start bare (sshd, Python, sudo; no web stack), like a new cloud server. They reach the
# host and each other only (no forwarding, no NAT); apt goes through an apt-cacher-ng on the
# bridge address that serves only the Debian and Ubuntu archives. See ../shared/TESTBED.md.
#
#   fleet.sh up NAME:DISTRO...   build what is missing, start the nodes, print `NAME IP` lines
#                                once `ssh root@IP true` works with the fleet key (a stopped
#                                node boots again with its disk as it was: a reboot)
#   fleet.sh restart NAME...     stop and boot nodes again, keeping their disks (a reboot)
#   fleet.sh stop NAME...        stop nodes, keeping their disks
#   fleet.sh down [NAME...]      stop and remove nodes (all, and the proxy and bridge, without
#                                names): no mounts, namespaces, links, cgroups or processes left
#   fleet.sh key                 print the path of the private key that logs in as root
#   fleet.sh ip NAME             print a running node's address
#   fleet.sh exec NAME CMD...    run a host command in a node's network namespace (traffic
#                                from another machine of the fleet, without touching it)
#   fleet.sh list                print `NAME IP DISTRO STATE` per node
#
# Base roots, the apt cache and the key stay in $PRESSLUFT_FLEET_DIR (default
# /var/lib/pressluft-fleet) and are reused by later runs. Every wait scales with
# PRESSLUFT_TEST_PATIENCE (as the tests' waits do).
set -euo pipefail

STATE=${PRESSLUFT_FLEET_DIR:-/var/lib/pressluft-fleet}
BRIDGE=plfleet0
SUBNET=10.213.0
HOST_IP=$SUBNET.1
PROXY_PORT=3149
PROXY=http://$HOST_IP:$PROXY_PORT
CGROUP=pressluft-fleet
DEBIAN_MIRROR=http://deb.debian.org/debian
DEBIAN_SECURITY=http://deb.debian.org/debian-security
UBUNTU_MIRROR=http://archive.ubuntu.com/ubuntu
UBUNTU_SECURITY=http://security.ubuntu.com/ubuntu
# Ubuntu's 2018 archive signing key: the keyring taken from the archive is trusted only with it.
UBUNTU_KEY=F6ECB3762474EDA9D21B7022871920D1991BC93C
NODE_PACKAGES=systemd-sysv,libpam-systemd,dbus,openssh-server,python3,python3-apt,sudo,iproute2,ca-certificates
patience=${PRESSLUFT_TEST_PATIENCE:-1}
case $patience in '' | *[!0-9]* | 0) echo "PRESSLUFT_TEST_PATIENCE must be a positive number" >&2; exit 2 ;; esac

log() { echo "[fleet] $*" >&2; }
die() { echo "fleet.sh: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (namespaces, mounts, a bridge)"; }

valid_name() { [[ $1 =~ ^[a-z][a-z0-9-]{0,19}$ ]] || die "bad node name '$1' (a-z, 0-9, -; at most 20)"; }

node_dir() { echo "$STATE/nodes/$1"; }

key() {
  mkdir -p "$STATE"
  chmod 0700 "$STATE"
  if [ ! -s "$STATE/fleet_key" ]; then
    ssh-keygen -q -t ed25519 -N '' -C pressluft-fleet -f "$STATE/fleet_key"
  fi
  echo "$STATE/fleet_key"
}

host_packages() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v apt-cacher-ng >/dev/null || [ -x /usr/sbin/apt-cacher-ng ] || missing+=(apt-cacher-ng)
  command -v gpg >/dev/null || missing+=(gpg)
  command -v ssh >/dev/null || missing+=(openssh-client)
  [ ${#missing[@]} = 0 ] && return
  log "installing ${missing[*]}"
  # --no-install-recommends: libnss-mymachines would rewrite the host's nsswitch.conf.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts an apt-cacher-ng on every address of the host: the fleet runs its own.
  if [ -x /etc/init.d/apt-cacher-ng ]; then
    /etc/init.d/apt-cacher-ng stop >/dev/null 2>&1 || true
  fi
}

bridge_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    sysctl -q -w "net.ipv6.conf.$BRIDGE.disable_ipv6=1"
    ip addr add "$HOST_IP/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

proxy_running() {
  local pid
  pid=$(cat "$STATE/acng/pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

proxy_up() {
  proxy_running && return
  local conf=$STATE/acng/conf
  mkdir -p "$conf" "$STATE/acng/cache" "$STATE/acng/log"
  # Only the archives the nodes use, pinned to their real hosts (the stock backend lists do
  # not resolve here), and nothing else (ForceManaged).
  cat >"$conf/acng.conf" <<EOF
CacheDir: $STATE/acng/cache
LogDir: $STATE/acng/log
SupportDir: /usr/lib/apt-cacher-ng
Port: $PROXY_PORT
BindAddress: $HOST_IP
PidFile: $STATE/acng/pid
ForeGround: 0
ForceManaged: 1
Remap-debrep: deb.debian.org/debian ; $DEBIAN_MIRROR
Remap-debsec: deb.debian.org/debian-security ; $DEBIAN_SECURITY
Remap-uburep: archive.ubuntu.com/ubuntu ; $UBUNTU_MIRROR
Remap-ubusec: security.ubuntu.com/ubuntu ; $UBUNTU_SECURITY
ExThreshold: 30
EOF
  local acng
  acng=$(command -v apt-cacher-ng || echo /usr/sbin/apt-cacher-ng)
  "$acng" -c "$conf" >/dev/null 2>&1
  local deadline=$((SECONDS + 30 * patience))
  until curl -s -o /dev/null "http://$HOST_IP:$PROXY_PORT/acng-report.html"; do
    [ $SECONDS -lt $deadline ] || die "apt-cacher-ng did not start (see $STATE/acng/log)"
    sleep 0.2
  done
}

# Ubuntu's archive keyring, taken from the archive's own keyring package and trusted only if it
# holds Ubuntu's archive key.
ubuntu_keyring() {
  local keyring=$STATE/ubuntu-archive-keyring.gpg
  if [ ! -s "$keyring" ]; then
    local tmp
    tmp=$(mktemp -d)
    local arch
    arch=$(dpkg --print-architecture)
    local deb
    deb=$(curl -fsS --proxy "$PROXY" "$UBUNTU_MIRROR/dists/noble/main/binary-$arch/Packages.gz" |
      zcat | awk '/^Package: ubuntu-keyring$/ { p = 1 } p && /^Filename: / { print $2; exit }')
    [ -n "$deb" ] || die "no ubuntu-keyring package in the archive's index"
    curl -fsS --proxy "$PROXY" -o "$tmp/keyring.deb" "$UBUNTU_MIRROR/$deb"
    dpkg-deb --fsys-tarfile "$tmp/keyring.deb" |
      tar -x -C "$tmp" ./usr/share/keyrings/ubuntu-archive-keyring.gpg
    if ! gpg --show-keys --with-colons "$tmp/usr/share/keyrings/ubuntu-archive-keyring.gpg" 2>/dev/null |
      grep -q "^fpr:::::::::$UBUNTU_KEY:"; then
      rm -rf "$tmp"
      die "the archive's keyring does not hold Ubuntu's archive key $UBUNTU_KEY"
    fi
    cp "$tmp/usr/share/keyrings/ubuntu-archive-keyring.gpg" "$keyring"
    rm -rf "$tmp"
  fi
  echo "$keyring"
}

sources_of() {
  case $1 in
    bookworm | trixie)
      printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
        "$DEBIAN_MIRROR" "$1" "$DEBIAN_MIRROR" "$1" "$DEBIAN_SECURITY" "$1"
      ;;
    noble)
      printf 'deb %s noble main universe\ndeb %s noble-updates main universe\ndeb %s noble-security main universe\n' \
        "$UBUNTU_MIRROR" "$UBUNTU_MIRROR" "$UBUNTU_SECURITY"
      ;;
  esac
}

# A base root: a minimal system with systemd, sshd, Python and sudo, no host keys, no apt lists,
# an empty machine-id. Built once; nodes boot from overlays over it.
build_base() {
  local distro=$1 base=$STATE/bases/$1
  [ -f "$base/.complete" ] && return
  log "building the $distro base root (once)"
  rm -rf "$base.tmp"
  mkdir -p "$STATE/bases"
  local args=(--variant=minbase --include="$NODE_PACKAGES")
  case $distro in
    bookworm | trixie)
      args+=("$distro" "$base.tmp" "$DEBIAN_MIRROR")
      ;;
    noble)
      # Bookworm's debootstrap has no noble script; the generic Ubuntu one works.
      args+=("--components=main,universe" --keyring="$(ubuntu_keyring)"
        noble "$base.tmp" "$UBUNTU_MIRROR" /usr/share/debootstrap/scripts/gutsy)
      ;;
  esac
  # In a mount namespace of its own, with services kept from starting: openssh's postinst
  # would otherwise start an sshd on the host's network.
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare -m --propagation private bash -c '
    set -euo pipefail
    base=$1 proxy=$2
    shift 2
    mkdir -p "$base/usr/sbin"
    printf "#!/bin/sh\nexit 101\n" >"$base/usr/sbin/policy-rc.d"
    chmod 0755 "$base/usr/sbin/policy-rc.d"
    http_proxy=$proxy debootstrap "$@" >"$base.log" 2>&1 || { tail -30 "$base.log" >&2; exit 1; }
  ' build "$base.tmp" "$PROXY" "${args[@]}"
  sources_of "$distro" >"$base.tmp/etc/apt/sources.list"
  printf 'Acquire::http::Proxy "%s";\n' "$PROXY" >"$base.tmp/etc/apt/apt.conf.d/01pressluft-fleet-proxy"
  rm -f "$base.tmp/usr/sbin/policy-rc.d" "$base.tmp"/etc/ssh/ssh_host_*
  rm -rf "$base.tmp"/var/lib/apt/lists/* "$base.tmp"/var/cache/apt/archives/*.deb
  : >"$base.tmp/etc/machine-id"
  rm -f "$base.tmp/var/lib/dbus/machine-id"
  # Nodes resolve nothing (a resolver that drops packets makes MariaDB's lookups hang).
  rm -f "$base.tmp/etc/resolv.conf"
  echo "nameserver 127.0.0.1" >"$base.tmp/etc/resolv.conf"
  # Root logs in with the fleet key only.
  sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin prohibit-password/' "$base.tmp/etc/ssh/sshd_config"
  mv "$base.tmp" "$base"
  touch "$base/.complete"
}

distro_of() { cat "$(node_dir "$1")/distro"; }
ip_of() { cat "$(node_dir "$1")/ip"; }

# The lowest free address (.10 up), remembered with the node.
allocate_ip() {
  local used=" " d n
  for d in "$STATE"/nodes/*/ip; do
    [ -f "$d" ] && used+="$(cat "$d") "
  done
  for n in $(seq 10 250); do
    case $used in *" $SUBNET.$n "*) ;; *) echo "$SUBNET.$n"; return ;; esac
  done
  die "no free address in $SUBNET.0/24"
}

launcher_pid() {
  local pidfile
  pidfile=$(node_dir "$1")/launcher.pid
  [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"
}

running() { launcher_pid "$1" >/dev/null; }

# A node's disk: the overlay over its base, with its own identity (first boot only).
prepare_node() {
  local name=$1 distro=$2 dir
  dir=$(node_dir "$name")
  if [ ! -d "$dir/upper" ]; then
    mkdir -p "$dir/upper" "$dir/work" "$dir/root"
    echo "$distro" >"$dir/distro"
    allocate_ip >"$dir/ip"
  fi
  [ "$(distro_of "$name")" = "$distro" ] || die "$name exists as $(distro_of "$name"), not $distro"
  if ! mountpoint -q "$dir/root"; then
    mount -t overlay overlay \
      -o "lowerdir=$STATE/bases/$distro,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
  fi
  local root=$dir/root
  if [ ! -f "$dir/identity" ]; then
    echo "$name" >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >"$root/etc/hosts"
    ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$root/etc/ssh/ssh_host_ed25519_key"
    ssh-keygen -q -t ecdsa -N '' -C "root@$name" -f "$root/etc/ssh/ssh_host_ecdsa_key"
    install -d -m 0700 "$root/root/.ssh"
    install -m 0600 "$(key).pub" "$root/root/.ssh/authorized_keys"
    touch "$dir/identity"
  fi
}

netns_up() {
  local name=$1 ns=plf-$1 ip
  ip=$(ip_of "$name")
  local host_if=plfv${ip##*.}
  if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
  fi
  if ! ip link show "$host_if" >/dev/null 2>&1; then
    ip link add "$host_if" type veth peer name eth0 netns "$ns"
    ip link set "$host_if" master "$BRIDGE" up
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$HOST_IP"
  fi
}

# Boots the node under systemd-nspawn in cgroups of its own (nspawn's --keep-unit puts its
# cgroups under the caller's); a node rebooting itself (nspawn exits 133) boots again.
boot() {
  local name=$1 dir
  dir=$(node_dir "$name")
  running "$name" && return
  local h
  for h in systemd unified; do
    [ -d "/sys/fs/cgroup/$h" ] && mkdir -p "/sys/fs/cgroup/$h/$CGROUP/$name"
  done
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c '
    for h in systemd unified; do
      [ -d "/sys/fs/cgroup/$h/$3/$1" ] && echo $$ >"/sys/fs/cgroup/$h/$3/$1/cgroup.procs"
    done
    while :; do
      SYSTEMD_NSPAWN_API_VFS_WRITABLE=network systemd-nspawn --quiet -D "$2/root" --boot \
        --machine="$1" --register=no --keep-unit --network-namespace-path="/run/netns/plf-$1" \
        --capability=CAP_NET_ADMIN --resolv-conf=off --timezone=off --link-journal=no \
        --console=read-only &
      echo $! >"$2/nspawn.pid"
      wait $!
      rc=$?
      [ $rc = 133 ] || break
    done
  ' boot "$name" "$dir" "$CGROUP" </dev/null >>"$dir/console.log" 2>&1 &
  echo $! >"$dir/launcher.pid"
}

wait_ssh() {
  local name=$1 ip
  ip=$(ip_of "$name")
  local deadline=$((SECONDS + 120 * patience))
  until ssh -q -i "$(key)" -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 "root@$ip" true 2>/dev/null; do
    if [ $SECONDS -ge $deadline ] || ! running "$name"; then
      tail -20 "$(node_dir "$name")/console.log" >&2 || true
      die "$name ($ip) did not answer on SSH"
    fi
    sleep 0.5
  done
}

up() {
  need_root
  [ $# -gt 0 ] || die "usage: fleet.sh up NAME:DISTRO..."
  local spec name distro names=() distros=()
  for spec in "$@"; do
    name=${spec%%:*}
    distro=${spec#*:}
    valid_name "$name"
    case $distro in bookworm | noble | trixie) ;; *) die "unknown distribution '$distro' (bookworm, noble, trixie)" ;; esac
    names+=("$name")
    distros+=("$distro")
  done
  host_packages
  key >/dev/null
  bridge_up
  proxy_up
  local d pids=()
  for d in $(printf '%s\n' "${distros[@]}" | sort -u); do
    build_base "$d" &
    pids+=($!)
  done
  for d in "${pids[@]}"; do wait "$d" || die "building a base root failed"; done
  local i
  for i in "${!names[@]}"; do
    prepare_node "${names[$i]}" "${distros[$i]}"
    netns_up "${names[$i]}"
    boot "${names[$i]}"
  done
  for name in "${names[@]}"; do
    wait_ssh "$name"
    echo "$name $(ip_of "$name")"
  done
}

# Stops a node's systemd cleanly (SIGTERM to nspawn halts it), then whatever is left.
stop_node() {
  local name=$1 dir pid
  dir=$(node_dir "$name")
  if pid=$(launcher_pid "$name"); then
    # The launcher goes first (it must not boot the node again), then nspawn halts the node.
    kill -TERM "$pid" 2>/dev/null || true
    if [ -s "$dir/nspawn.pid" ]; then
      local nspawn deadline=$((SECONDS + 30 * patience))
      nspawn=$(cat "$dir/nspawn.pid")
      kill -TERM "$nspawn" 2>/dev/null || true
      while kill -0 "$nspawn" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    fi
  fi
  local h procs
  for h in systemd unified; do
    procs=/sys/fs/cgroup/$h/$CGROUP/$name
    [ -d "$procs" ] || continue
    # Anything still in the node's cgroups is killed; then the tree goes, deepest first.
    local p
    while read -r p; do
      kill -KILL "$p" 2>/dev/null || true
    done < <(find "$procs" -name cgroup.procs -exec cat {} + 2>/dev/null)
    local deadline=$((SECONDS + 10 * patience))
    while [ -n "$(find "$procs" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do
      sleep 0.1
    done
    find "$procs" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -f "$dir/launcher.pid" "$dir/nspawn.pid"
  if mountpoint -q "$dir/root" 2>/dev/null; then
    umount "$dir/root" 2>/dev/null || umount -l "$dir/root"
  fi
}

remove_node() {
  local name=$1 dir ip
  dir=$(node_dir "$name")
  stop_node "$name"
  if [ -f "$dir/ip" ]; then
    ip=$(ip_of "$name")
    ip link del "plfv${ip##*.}" 2>/dev/null || true
  fi
  ip netns del "plf-$name" 2>/dev/null || true
  rm -rf "$dir"
}

all_nodes() {
  local d
  for d in "$STATE"/nodes/*/; do
    [ -d "$d" ] && basename "$d"
  done
  return 0
}

down() {
  need_root
  local name
  if [ $# -gt 0 ]; then
    for name in "$@"; do
      valid_name "$name"
      remove_node "$name"
    done
    return
  fi
  for name in $(all_nodes); do remove_node "$name"; done
  if proxy_running; then
    kill -TERM "$(cat "$STATE/acng/pid" 2>/dev/null)" 2>/dev/null || true
    local deadline=$((SECONDS + 10 * patience))
    while proxy_running && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  fi
  rm -f "$STATE/acng/pid"
  ip link del "$BRIDGE" 2>/dev/null || true
  local h
  for h in systemd unified; do
    rmdir "/sys/fs/cgroup/$h/$CGROUP" 2>/dev/null || true
  done
}

cmd=${1:-}
shift || true
case $cmd in
  up) up "$@" ;;
  down) down "$@" ;;
  stop)
    need_root
    for n in "$@"; do valid_name "$n"; stop_node "$n"; done
    ;;
  restart)
    need_root
    for n in "$@"; do
      valid_name "$n"
      [ -d "$(node_dir "$n")/upper" ] || die "no node $n"
      stop_node "$n"
    done
    for n in "$@"; do up "$n:$(distro_of "$n")" >/dev/null; done
    ;;
  key) key ;;
  exec)
    need_root
    valid_name "${1:-}"
    [ -d "$(node_dir "$1")" ] || die "no node $1"
    ns=plf-$1
    shift
    exec ip netns exec "$ns" "$@"
    ;;
  ip)
    valid_name "${1:-}"
    running "$1" || die "$1 is not running"
    ip_of "$1"
    ;;
  list)
    for n in $(all_nodes); do
      state=stopped
      running "$n" && state=running
      echo "$n $(ip_of "$n") $(distro_of "$n") $state"
    done
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
