#!/usr/bin/env bash
# Pressluft installer: makes this Ubuntu 24.04 (or Debian 12) server a Pressluft control plane
# that manages itself as its first node. Run as root; safe to run again (upgrades binaries and
# playbooks, keeps data, restarts the service). See docs/operations.md.
#
#   curl -fsSL https://example.invalid/install.sh | bash -s -- --release-url URL --sha256 HEX
#   ./install.sh                     # from a checkout: builds with cargo, then installs
#   ./install.sh --uninstall         # removes service and binaries, keeps data
#   ./install.sh --uninstall --purge # removes data, configuration and users too
set -eu
set -o pipefail
umask 022

BIN_DIR=/usr/local/bin
SHARE_DIR=/usr/share/pressluft
OPT_DIR=/opt/pressluft
VENV=$OPT_DIR/ansible
ETC_DIR=/etc/pressluft
CONFIG=$ETC_DIR/server.toml
CREDENTIALS=$ETC_DIR/admin-credentials
DATA_DIR=/var/lib/pressluft
LOG_DIR=/var/log/pressluft
LOG_FILE=$LOG_DIR/server.log
RUN_DIR=/run/pressluft
UNIT=/etc/systemd/system/pressluft.service
INIT_SCRIPT=/etc/init.d/pressluft
LOGROTATE=/etc/logrotate.d/pressluft
SUDOERS=/etc/sudoers.d/pressluft-node
SERVICE_USER=pressluft
NODE_USER=pressluft-node
BINARIES=(pressluft-server pressluft pressluft-tui)
# The controller's Ansible: the version line the playbooks are written and tested against.
ANSIBLE_CORE='ansible-core>=2.19,<2.20'
ANSIBLE_CORE_PREFIX=2.19.

release_url=
release_sha256=
bin_dir=
build=
admin_email=admin@pressluft.local
node=yes
node_name=
node_ssh_port=22
public_ip=
reprovision=
listen_addr=127.0.0.1:8443
insecure_plaintext=
server_url_override=
metrics_addr=127.0.0.1:9464
wordpress_source_dir=
firewall_allow_tcp=
action=install
purge=

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<'USAGE'
Usage: install.sh [OPTIONS]

Where the binaries come from (first that applies):
  --release-url URL         a release archive (pressluft-VERSION-linux-ARCH.tar.gz, made by
                            scripts/package.sh); https:// or file://
  --sha256 HEX              the archive's SHA-256 (checked before anything is installed)
  --bin-dir DIR             prebuilt binaries in DIR; playbooks from the checkout beside this script
  --build                   build from the checkout beside this script (cargo build --release)
  (none)                    an unpacked release beside this script, else --build in a checkout

Installation:
  --admin-email EMAIL       the first administrator's login [admin@pressluft.local]
  --listen-addr HOST:PORT   API, grpc-web and UI [127.0.0.1:8443]; an address other than
                            loopback needs TLS (set tls_cert_file/tls_key_file in the
                            config) or --insecure-plaintext
  --insecure-plaintext      allow serving plaintext on that address (trusted networks only)
  --metrics-addr HOST:PORT  Prometheus metrics ("" for none) [127.0.0.1:9464]
  --server-url URL          where this script's CLI steps reach the server [from listen_addr];
                            with TLS configured, https://NAME:PORT matching the certificate
  --wordpress-source-dir D  install WordPress from D on the nodes instead of downloading it
  --firewall-allow-tcp LIST more TCP ports the node firewall keeps open, e.g. 2024,9100
  --no-node                 do not register and provision this machine as a node
  --node-name NAME          the local node's name [the short hostname]
  --node-ssh-port PORT      sshd port the control plane uses to reach this machine [22]
  --public-ip IP            the address your domains point at [detected]
  --reprovision             provision the local node again even when it is active

Removal:
  --uninstall               stop and remove the service, binaries, playbooks and Ansible;
                            keep configuration, data, logs and users
  --purge                   with --uninstall: remove those too (sites on this node keep running)

  -h, --help                this text
USAGE
}

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --release-url) release_url=${2:?--release-url needs a URL}; shift ;;
      --sha256) release_sha256=${2:?--sha256 needs a value}; shift ;;
      --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift ;;
      --build) build=yes ;;
      --admin-email) admin_email=${2:?--admin-email needs an address}; shift ;;
      --listen-addr) listen_addr=${2:?--listen-addr needs HOST:PORT}; shift ;;
      --insecure-plaintext) insecure_plaintext=yes ;;
      --metrics-addr) metrics_addr=${2?--metrics-addr needs HOST:PORT}; shift ;;
      --server-url) server_url_override=${2:?--server-url needs a URL}; shift ;;
      --wordpress-source-dir) wordpress_source_dir=${2:?--wordpress-source-dir needs a directory}; shift ;;
      --firewall-allow-tcp) firewall_allow_tcp=${2?--firewall-allow-tcp needs a list}; shift ;;
      --no-node) node= ;;
      --node-name) node_name=${2:?--node-name needs a name}; shift ;;
      --node-ssh-port) node_ssh_port=${2:?--node-ssh-port needs a port}; shift ;;
      --public-ip) public_ip=${2:?--public-ip needs an address}; shift ;;
      --reprovision) reprovision=yes ;;
      --uninstall) action=uninstall ;;
      --purge) purge=yes ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  if [ -n "$purge" ] && [ "$action" != uninstall ]; then
    die "--purge goes with --uninstall"
  fi
  if ! [[ $node_ssh_port =~ ^[0-9]+$ ]] || [ "$node_ssh_port" -lt 1 ] || [ "$node_ssh_port" -gt 65535 ]; then
    die "--node-ssh-port must be a port number, not $node_ssh_port"
  fi
  local addr_re='^[][0-9A-Za-z.:-]+:[0-9]+$'
  [[ $listen_addr =~ $addr_re ]] || die "--listen-addr must be HOST:PORT, not $listen_addr"
  if [ -n "$metrics_addr" ] && ! [[ $metrics_addr =~ $addr_re ]]; then
    die "--metrics-addr must be HOST:PORT, not $metrics_addr"
  fi
  [[ $firewall_allow_tcp =~ ^[0-9,]*$ ]] || die "--firewall-allow-tcp must be ports separated by commas"
  [ -z "$release_sha256" ] || [[ $release_sha256 =~ ^[0-9a-fA-F]{64}$ ]] || die "--sha256 must be 64 hex digits"
  [[ $admin_email =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]] || die "--admin-email must be an email address"
}

# The directory this script is in, when it is a file (not `curl | bash`).
script_dir() {
  local source=${BASH_SOURCE[0]:-}
  if [ -n "$source" ] && [ -f "$source" ]; then
    (cd "$(dirname "$source")" && pwd)
  fi
}

check_system() {
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo bash install.sh ...)"
  [ -r /etc/os-release ] || die "cannot tell the operating system: no /etc/os-release"
  local id version
  id=$(sed -n 's/^ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)
  version=$(sed -n 's/^VERSION_ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)
  case "$id $version" in
    "ubuntu 24.04" | "debian 12") ;;
    *) die "Pressluft installs on Ubuntu 24.04 (production) or Debian 12 (testing), not $id $version" ;;
  esac
  case $(uname -m) in
    x86_64 | aarch64) ;;
    *) die "unsupported architecture $(uname -m)" ;;
  esac
}

has_systemd() { [ -d /run/systemd/system ]; }

install_packages() {
  local wanted=(openssh-server openssh-client python3 python3-venv sudo rclone curl ca-certificates tar gzip logrotate iproute2)
  local missing=() pkg
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "Installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "Packages present"
  fi
}

install_ansible() {
  local version=
  if [ -x "$VENV/bin/python" ]; then
    # As the service user: the venv must be usable by the account that runs the playbooks.
    version=$(runuser -u "$SERVICE_USER" -- "$VENV/bin/python" -c 'import ansible.release as r; print(r.__version__)' 2>/dev/null || true)
  fi
  case $version in
    "$ANSIBLE_CORE_PREFIX"*) say "Ansible $version present ($VENV)" ; return ;;
  esac
  say "Installing Ansible ($ANSIBLE_CORE) in $VENV"
  rm -rf "$VENV"
  mkdir -p "$OPT_DIR"
  # The distribution's Python, whatever else PATH offers (a pyenv in root's home is not
  # reachable by the service user).
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-cache-dir "$ANSIBLE_CORE"
  note "$("$VENV/bin/ansible-playbook" --version | head -1)"
}

# Fills $stage with bin/ (the three binaries) and playbooks/ from the chosen source.
stage_release() {
  local here
  here=$(script_dir)
  if [ -n "$release_url" ]; then
    say "Downloading $release_url"
    curl -fsSL --proto '=https,file' -o "$stage/release.tar.gz" "$release_url" \
      || die "cannot download $release_url"
    if [ -n "$release_sha256" ]; then
      printf '%s  %s\n' "$release_sha256" "$stage/release.tar.gz" | sha256sum -c --status - \
        || die "the archive's SHA-256 is not $release_sha256"
    else
      note "no --sha256 given: the archive is trusted as downloaded"
    fi
    tar -xzf "$stage/release.tar.gz" -C "$stage" --strip-components=1 --no-same-owner
    rm -f "$stage/release.tar.gz"
  elif [ -n "$bin_dir" ]; then
    if [ -z "$here" ] || [ ! -f "$here/playbooks/ansible.cfg" ]; then
      die "--bin-dir takes the playbooks from the checkout beside install.sh; there are none"
    fi
    copy_binaries "$bin_dir"
    cp -a "$here/playbooks" "$stage/playbooks"
  elif [ -z "$build" ] && [ -n "$here" ] && [ -x "$here/bin/pressluft-server" ]; then
    copy_binaries "$here/bin"
    cp -a "$here/playbooks" "$stage/playbooks"
  elif [ -n "$here" ] && [ -f "$here/Cargo.toml" ]; then
    command -v cargo >/dev/null 2>&1 \
      || die "building from the checkout needs Rust (https://rustup.rs) and Node.js 18+ for the UI; or pass --release-url"
    # PRESSLUFT_CARGO_PROFILE=dev lets the tests take this path without a release build.
    local profile=${PRESSLUFT_CARGO_PROFILE:-release} out=release
    [ "$profile" = release ] || out=$profile
    [ "$profile" != dev ] || out=debug
    say "Building the binaries (cargo build --profile $profile)"
    (cd "$here" && cargo build --profile "$profile" --locked --bins)
    copy_binaries "$here/target/$out"
    cp -a "$here/playbooks" "$stage/playbooks"
  else
    die "no binaries: pass --release-url URL (a pressluft-VERSION-linux-ARCH.tar.gz), or run install.sh from a checkout"
  fi
  local binary
  for binary in "${BINARIES[@]}"; do
    [ -x "$stage/bin/$binary" ] || die "the release has no bin/$binary"
  done
  [ -f "$stage/playbooks/ansible.cfg" ] || die "the release has no playbooks/"
  "$stage/bin/pressluft-server" --version >/dev/null || die "bin/pressluft-server does not run on this machine"
  note "$("$stage/bin/pressluft-server" --version)"
}

copy_binaries() {
  mkdir -p "$stage/bin"
  local binary
  for binary in "${BINARIES[@]}"; do
    [ -x "$1/$binary" ] || die "$1/$binary is missing"
    cp "$1/$binary" "$stage/bin/$binary"
  done
}

create_accounts_and_directories() {
  if ! id "$SERVICE_USER" >/dev/null 2>&1; then
    say "Creating the system user $SERVICE_USER"
    useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "Pressluft control plane" "$SERVICE_USER"
  fi
  install -d -o root -g "$SERVICE_USER" -m 0750 "$ETC_DIR"
  install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0700 "$DATA_DIR" "$DATA_DIR/secrets"
  install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$LOG_DIR"
}

write_config() {
  if [ -f "$CONFIG" ]; then
    note "keeping $CONFIG"
    return
  fi
  say "Writing $CONFIG"
  local ports=
  [ -z "$firewall_allow_tcp" ] || ports=$(printf '%s' "$firewall_allow_tcp" | sed 's/,/, /g')
  {
    printf '# Pressluft server configuration (written by install.sh; kept by later runs).\n'
    printf '# Every field: docs/operations.md. Restart the service after a change.\n'
    printf 'listen_addr = "%s"\n' "$listen_addr"
    if [ -n "$insecure_plaintext" ]; then
      printf '# Plaintext on a non-loopback address, accepted with --insecure-plaintext:\n'
      printf 'insecure_plaintext = true\n'
    fi
    if [ -n "$metrics_addr" ]; then
      printf 'metrics_listen_addr = "%s"\n' "$metrics_addr"
    fi
    printf 'data_dir = "%s"\n' "$DATA_DIR"
    printf 'playbooks_dir = "%s/playbooks"\n' "$SHARE_DIR"
    printf 'ansible_playbook = "%s/bin/ansible-playbook"\n' "$VENV"
    printf 'rclone = "/usr/bin/rclone"\n'
    if [ -n "$wordpress_source_dir" ]; then
      printf 'wordpress_source_dir = "%s"\n' "$wordpress_source_dir"
    fi
    printf 'firewall_allow_tcp = [%s]\n' "$ports"
    printf '# Serve the API over TLS yourself (or put a reverse proxy in front):\n'
    printf '# tls_cert_file = "/etc/pressluft/tls/fullchain.pem"\n'
    printf '# tls_key_file = "/etc/pressluft/tls/privkey.pem"\n'
  } >"$CONFIG.new"
  chown root:"$SERVICE_USER" "$CONFIG.new"
  chmod 0640 "$CONFIG.new"
  mv -f "$CONFIG.new" "$CONFIG"
}

# Runs the server binary's admin commands as the service user (files it creates stay its own).
server_admin() {
  (cd / && runuser -u "$SERVICE_USER" -- "$BIN_DIR/pressluft-server" --config "$CONFIG" admin "$@")
}

# Stops the service, puts the staged binaries and playbooks in place, starts it again.
swap_in_release() {
  say "Installing binaries into $BIN_DIR and playbooks into $SHARE_DIR"
  local binary
  for binary in "${BINARIES[@]}"; do
    install -m 0755 "$stage/bin/$binary" "$BIN_DIR/.$binary.new"
  done
  mkdir -p "$SHARE_DIR"
  rm -rf "$SHARE_DIR/playbooks.new" "$SHARE_DIR/playbooks.old"
  cp -r "$stage/playbooks" "$SHARE_DIR/playbooks.new"
  chown -R root:root "$SHARE_DIR/playbooks.new"
  chmod -R u=rwX,go=rX "$SHARE_DIR/playbooks.new"
  # Running jobs stop and queue themselves again on SIGTERM; the new version resumes them.
  stop_service
  for binary in "${BINARIES[@]}"; do
    mv -f "$BIN_DIR/.$binary.new" "$BIN_DIR/$binary"
  done
  if [ -d "$SHARE_DIR/playbooks" ]; then
    mv "$SHARE_DIR/playbooks" "$SHARE_DIR/playbooks.old"
  fi
  mv "$SHARE_DIR/playbooks.new" "$SHARE_DIR/playbooks"
  rm -rf "$SHARE_DIR/playbooks.old"
}

# The systemd unit: the server as the service user, with the filesystem read-only but for its
# data and logs, no privilege gain, and no access to kernel tunables, devices or homes.
systemd_unit() {
  cat <<UNIT
# Managed by install.sh (overwritten on upgrade): put changes in a drop-in,
# systemctl edit pressluft
[Unit]
Description=Pressluft control plane
Documentation=file://$SHARE_DIR/docs/operations.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$SERVICE_USER
Group=$SERVICE_USER
ExecStart=$BIN_DIR/pressluft-server --config $CONFIG serve
Environment=RUST_LOG=info
Environment=NO_COLOR=1
StandardOutput=append:$LOG_FILE
StandardError=append:$LOG_FILE
Restart=on-failure
RestartSec=2s
TimeoutStopSec=60s
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$DATA_DIR $LOG_DIR
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
UNIT
}

# The fallback for hosts without systemd: an LSB init script around start-stop-daemon, the
# server as the service user, output appended to the log file, a pid file in /run/pressluft.
init_script() {
  cat <<'SCRIPT'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          pressluft
# Required-Start:    $network $remote_fs
# Required-Stop:     $network $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Pressluft control plane
### END INIT INFO
# Managed by install.sh (overwritten on upgrade). Used where systemd is not running.
set -eu
NAME=pressluft
DAEMON=/usr/local/bin/pressluft-server
CONFIG=/etc/pressluft/server.toml
USER=pressluft
RUN_DIR=/run/pressluft
PIDFILE=$RUN_DIR/pressluft.pid
LOG=/var/log/pressluft/server.log

# By pid file and user: after an upgrade the running binary is no longer the file at $DAEMON.
running() {
  start-stop-daemon --status --pidfile "$PIDFILE" --user "$USER"
}

case "${1:-}" in
  start)
    if running; then echo "$NAME is running"; exit 0; fi
    install -d -o "$USER" -g "$USER" -m 0755 "$RUN_DIR"
    touch "$LOG" && chown "$USER:$USER" "$LOG" && chmod 0640 "$LOG"
    umask 077
    HOME=/var/lib/pressluft RUST_LOG=${RUST_LOG:-info} NO_COLOR=1 \
      start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$PIDFILE" \
      --chuid "$USER:$USER" --chdir /var/lib/pressluft --output "$LOG" \
      --exec "$DAEMON" -- --config "$CONFIG" serve
    echo "$NAME started"
    ;;
  stop)
    # SIGTERM: running jobs stop their playbooks and queue themselves again (up to 60 s).
    start-stop-daemon --stop --quiet --pidfile "$PIDFILE" --user "$USER" \
      --retry TERM/60/KILL/5 --remove-pidfile || true
    echo "$NAME stopped"
    ;;
  restart | force-reload)
    "$0" stop
    "$0" start
    ;;
  status)
    if running; then echo "$NAME is running (pid $(cat "$PIDFILE"))"; exit 0; fi
    echo "$NAME is not running"
    exit 3
    ;;
  *)
    echo "Usage: $0 {start|stop|restart|status}" >&2
    exit 2
    ;;
esac
SCRIPT
}

logrotate_config() {
  cat <<ROTATE
# Managed by install.sh.
$LOG_DIR/*.log {
  weekly
  rotate 8
  compress
  delaycompress
  missingok
  notifempty
  copytruncate
  su $SERVICE_USER $SERVICE_USER
}
ROTATE
}

write_service() {
  logrotate_config >"$LOGROTATE"
  touch "$LOG_FILE"
  chown "$SERVICE_USER:$SERVICE_USER" "$LOG_FILE"
  chmod 0640 "$LOG_FILE"
  if has_systemd; then
    say "Writing the systemd unit $UNIT"
    systemd_unit >"$UNIT"
    systemctl daemon-reload
    systemctl enable --quiet pressluft.service
  else
    say "No systemd here: writing the init script $INIT_SCRIPT (start-stop-daemon)"
    init_script >"$INIT_SCRIPT"
    chmod 0755 "$INIT_SCRIPT"
    if command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d pressluft defaults >/dev/null 2>&1 || note "update-rc.d did not register it for boot"
    fi
  fi
}

stop_service() {
  if has_systemd && [ -f "$UNIT" ]; then
    systemctl stop pressluft.service 2>/dev/null || true
  elif [ -x "$INIT_SCRIPT" ]; then
    "$INIT_SCRIPT" stop >/dev/null
  fi
}

start_service() {
  say "Starting the service"
  if has_systemd; then
    systemctl restart pressluft.service
  else
    "$INIT_SCRIPT" start >/dev/null
  fi
  local i
  for i in $(seq 120); do
    # -k: a loopback check of our own server, whose certificate may name only a public host.
    if curl -kfsS --max-time 2 "$(health_url)" >/dev/null 2>&1; then
      note "answering on $listen_addr ($(health_url))"
      return
    fi
    [ "$i" -lt 120 ] && sleep 0.5
  done
  tail -n 20 "$LOG_FILE" >&2 || true
  die "the server did not answer $(health_url) within 60 s; its log is $LOG_FILE"
}

# The listen address of the configuration in force (a kept file wins over the flags).
configured() {
  sed -n "s/^$1 *= *\"\\(.*\\)\"$/\\1/p" "$CONFIG" | head -n 1
}

server_url() {
  if [ -n "$server_url_override" ]; then
    printf '%s' "$server_url_override"
    return
  fi
  local addr scheme=http
  addr=$(configured listen_addr)
  [ -n "$(configured tls_cert_file)" ] && scheme=https
  # The server answers on loopback whatever address it binds.
  case $addr in
    0.0.0.0:* | "[::]":*) addr=127.0.0.1:${addr##*:} ;;
  esac
  printf '%s://%s' "$scheme" "$addr"
}

health_url() {
  printf '%s/healthz' "$(server_url)"
}

ensure_sshd() {
  # The host key install.sh pins for the local node (made by openssh-server's install).
  [ -f /etc/ssh/ssh_host_ed25519_key.pub ] || ssh-keygen -A
  if ss -Hltn "sport = :$node_ssh_port" | grep -q .; then
    return
  fi
  say "Starting sshd (port $node_ssh_port)"
  if has_systemd; then
    systemctl enable --now ssh >/dev/null 2>&1 || systemctl enable --now ssh.socket
  else
    mkdir -p /run/sshd
    service ssh start >/dev/null
  fi
  local i
  for i in $(seq 50); do
    ss -Hltn "sport = :$node_ssh_port" | grep -q . && return
    [ "$i" -lt 50 ] && sleep 0.2
  done
  die "sshd is not listening on port $node_ssh_port (set --node-ssh-port to the port it uses)"
}

# The account the control plane logs into on this machine: key only, passwordless sudo.
create_node_user() {
  local key=$1
  if ! id "$NODE_USER" >/dev/null 2>&1; then
    say "Creating the node user $NODE_USER (SSH key only, sudo)"
    useradd --create-home --shell /bin/bash --comment "Pressluft node access" "$NODE_USER"
  fi
  # '*' (no password, not locked): key logins work with and without PAM; no password login.
  usermod -p '*' "$NODE_USER"
  local home
  home=$(getent passwd "$NODE_USER" | cut -d: -f6)
  install -d -o "$NODE_USER" -g "$NODE_USER" -m 0700 "$home/.ssh"
  # Only from this machine (the control plane runs here) and without forwarding, ptys or
  # ~/.ssh/rc; node_provision writes the same line.
  printf 'from="127.0.0.1,::1",restrict %s\n' "$key" >"$home/.ssh/authorized_keys.new"
  chown "$NODE_USER:$NODE_USER" "$home/.ssh/authorized_keys.new"
  chmod 0600 "$home/.ssh/authorized_keys.new"
  mv -f "$home/.ssh/authorized_keys.new" "$home/.ssh/authorized_keys"
  printf '# Managed by install.sh: the Pressluft control plane runs its playbooks with sudo.\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n' \
    "$NODE_USER" >"$SUDOERS.new"
  chmod 0440 "$SUDOERS.new"
  visudo -cqf "$SUDOERS.new" || die "the sudoers entry does not check"
  mv -f "$SUDOERS.new" "$SUDOERS"
}

create_admin() {
  if [ -f "$CREDENTIALS" ]; then
    note "keeping the administrator's credentials in $CREDENTIALS"
    admin_email=$(sed -n 's/^email=//p' "$CREDENTIALS")
    return
  fi
  local password outcome
  password=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
  # The password travels on stdin only: never on a command line, never printed.
  outcome=$(printf '%s\n' "$password" | server_admin create-user --email "$admin_email" \
    --name Administrator --password-stdin --exists-ok 2>/dev/null) || die "creating the administrator failed"
  if [ "$outcome" = exists ]; then
    note "the administrator $admin_email exists, but $CREDENTIALS is gone:"
    note "set a new password with: pressluft-server --config $CONFIG admin set-password --email $admin_email"
    return
  fi
  say "Created the administrator $admin_email"
  (
    umask 077
    printf '# Pressluft administrator, created by install.sh on %s. Readable by root only.\nemail=%s\npassword=%s\n' \
      "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$admin_email" "$password" >"$CREDENTIALS.new"
  )
  chown root:root "$CREDENTIALS.new"
  chmod 0600 "$CREDENTIALS.new"
  mv -f "$CREDENTIALS.new" "$CREDENTIALS"
}

# Registers this machine as a node (once) and provisions it through the normal job path.
register_local_node() {
  local token json id status
  token=$(server_admin create-token --name "install.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --email "$admin_email" --ttl-days 1 2>/dev/null | tail -n 1) || die "cannot create a token for $admin_email"
  PRESSLUFT_SERVER=$(server_url)
  export PRESSLUFT_TOKEN=$token PRESSLUFT_SERVER
  trap revoke_install_token EXIT

  json=$("$BIN_DIR/pressluft" node list -o json) || die "cannot list nodes"
  read -r id status < <(printf '%s' "$json" | /usr/bin/python3 -c '
import json, sys
nodes = [n for n in json.load(sys.stdin)["nodes"] if n.get("is_local")]
print(nodes[0]["id"], nodes[0].get("status", "")) if nodes else print("", "")
')
  if [ -z "$id" ]; then
    [ -n "$node_name" ] || node_name=$(hostname -s | tr 'A-Z_' 'a-z-' | tr -cd 'a-z0-9-')
    [ -n "$node_name" ] || node_name=local
    [ -n "$public_ip" ] || public_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n 1)
    local host_key args
    host_key=$(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)
    args=(node add --name "$node_name" --hostname 127.0.0.1 --port "$node_ssh_port"
      --user "$NODE_USER" --local --host-key "$host_key" -o json)
    [ -z "$public_ip" ] || args+=(--public-ip "$public_ip")
    say "Registering this machine as the node $node_name"
    id=$("$BIN_DIR/pressluft" "${args[@]}" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') \
      || die "registering the local node failed"
    status=new
  else
    note "this machine is already the node $id ($status)"
  fi
  # The CLI prints the contract's JSON: enums by their value names.
  if [ "$status" != NODE_STATUS_ACTIVE ] || [ -n "$reprovision" ]; then
    say "Provisioning the node (node_provision, through the job queue)"
    "$BIN_DIR/pressluft" node provision "$id" --wait || die "provisioning failed: pressluft job list --type node_provision"
  fi
  local_node_id=$id
}

revoke_install_token() {
  [ -n "${PRESSLUFT_TOKEN:-}" ] || return 0
  local id
  id=$("$BIN_DIR/pressluft" token list -o json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin)["tokens"]:
    if t["name"].startswith("install.sh ") and not t.get("revoke_time"):
        print(t["id"])
' 2>/dev/null || true)
  local one
  for one in $id; do
    "$BIN_DIR/pressluft" token revoke "$one" >/dev/null 2>&1 || true
  done
  unset PRESSLUFT_TOKEN
}

summary() {
  local email
  email=$(sed -n 's/^email=//p' "$CREDENTIALS" 2>/dev/null || true)
  cat <<DONE

Pressluft is running.
  API and UI    $(server_url)  (configured in $CONFIG)
  health        $(health_url)
  metrics       $(configured metrics_listen_addr)
  data          $DATA_DIR (database, secrets)   logs: $LOG_FILE
  service       $(if has_systemd; then echo "systemctl status pressluft"; else echo "$INIT_SCRIPT status"; fi)
DONE
  if [ -n "${local_node_id:-}" ]; then
    printf '  local node    %s (SSH as %s on port %s)\n' "$local_node_id" "$NODE_USER" "$node_ssh_port"
  fi
  cat <<DONE

Log in (the administrator's password is in $CREDENTIALS, readable by root only):
  sed -n 's/^password=//p' $CREDENTIALS | pressluft login --server $(server_url) --email ${email:-$admin_email} --password-stdin
The UI from your machine: ssh -L 8443:$(configured listen_addr) root@THIS-SERVER, then http://127.0.0.1:8443/
DONE
}

do_install() {
  check_system
  install_packages
  # The release is fetched and checked before anything of Pressluft's is created.
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  stage_release
  create_accounts_and_directories
  install_ansible
  write_config
  # The service files first: the stop before the swap goes through the new ones.
  write_service
  swap_in_release
  rm -rf "$stage"
  trap - EXIT
  create_admin
  start_service
  if [ -n "$node" ]; then
    local key
    key=$(server_admin ssh-key 2>/dev/null) || die "cannot read the control plane's SSH key"
    create_node_user "$key"
    ensure_sshd
    register_local_node
    revoke_install_token
    trap - EXIT
  fi
  summary
}

do_uninstall() {
  [ "$(id -u)" -eq 0 ] || die "run as root"
  say "Stopping and removing the service"
  stop_service
  if [ -f "$UNIT" ]; then
    systemctl disable --quiet pressluft.service 2>/dev/null || true
    rm -f "$UNIT"
    systemctl daemon-reload 2>/dev/null || true
  fi
  if [ -f "$INIT_SCRIPT" ]; then
    if command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d -f pressluft remove >/dev/null 2>&1 || true
    fi
    rm -f "$INIT_SCRIPT"
  fi
  rm -rf "$RUN_DIR"
  say "Removing binaries, playbooks and the Ansible venv"
  local binary
  for binary in "${BINARIES[@]}"; do
    rm -f "$BIN_DIR/$binary" "$BIN_DIR/.$binary.new"
  done
  rm -rf "$SHARE_DIR" "$OPT_DIR" "$LOGROTATE"
  if [ -z "$purge" ]; then
    cat <<KEPT
Kept (remove with --uninstall --purge): $ETC_DIR, $DATA_DIR, $LOG_DIR,
the users $SERVICE_USER and $NODE_USER (with its sudo entry). Running install.sh again resumes
with this data.
KEPT
    return
  fi
  say "Purging configuration, data, logs and users"
  rm -rf "$ETC_DIR" "$DATA_DIR" "$LOG_DIR" "$SUDOERS"
  if id "$NODE_USER" >/dev/null 2>&1; then
    pkill -u "$NODE_USER" 2>/dev/null || true
    userdel --remove "$NODE_USER" 2>/dev/null || userdel "$NODE_USER"
  fi
  if id "$SERVICE_USER" >/dev/null 2>&1; then
    userdel "$SERVICE_USER"
  fi
  note "sites on this machine keep running; node_provision's own files (/etc/pressluft-node, /var/lib/pressluft-node, /usr/local/lib/pressluft) stay"
}

main() {
  parse_args "$@"
  case $action in
    install) do_install ;;
    uninstall) do_uninstall ;;
  esac
}

# Print the generated service files (for review and the tests) without installing anything.
case "${1:-}" in
  --print-systemd-unit) systemd_unit; exit 0 ;;
  --print-init-script) init_script; exit 0 ;;
esac

main "$@"
