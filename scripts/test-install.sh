#!/usr/bin/env bash
# install.sh, for real, on this machine (root, Debian 12, no systemd: the init-script fallback):
# a release archive with a wrong checksum installs nothing; the archive installs (the script
# piped into bash, as `curl URL | bash -s -- ...` runs it) and runs the
# service as `pressluft`, the administrator logs in with the CLI, the local node is provisioned
# through the job queue and a site is created on it; a second run (--build in the checkout)
# restarts the service and changes nothing else; --uninstall keeps the data and a new install
# (--bin-dir) resumes it; --uninstall --purge removes everything. Run by scripts/test.sh after the cargo
# tests (it provisions this machine through port 22, so it runs alone). Any failure exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

MARKER=/var/lib/pressluft-test/install-test-in-progress
CREDENTIALS=/etc/pressluft/admin-credentials
ADMIN=owner@example.com
SLUG=installcheck
passed=0

fail() {
  printf 'install test FAILED: %s\n' "$*" >&2
  exit 1
}
ok() {
  passed=$((passed + 1))
  printf '  ok: %s\n' "$*"
}
# check DESCRIPTION COMMAND...: the command must succeed.
check() {
  local what=$1
  shift
  "$@" || fail "$what"
  ok "$what"
}
json() { /usr/bin/python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
cli() { pressluft "$@"; }
mode() { stat -c '%a %U:%G' "$1"; }
health() { curl -fsS --max-time 5 http://127.0.0.1:8443/healthz 2>/dev/null; }
server_pid() { cat /run/pressluft/pressluft.pid; }
# Runs install.sh with ARGS, its output to $log (and the terminal), timing it.
run_install() {
  local started=$SECONDS
  bash install.sh "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  printf '  (install.sh %s: exit %s in %ss)\n' "$*" "$rc" $((SECONDS - started))
  return "$rc"
}

# The same, the script fed to bash on stdin (no file of its own, nothing beside it).
run_piped() {
  local started=$SECONDS
  curl -fsSL "file://$PWD/install.sh" | bash -s -- "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[1]}
  printf '  (curl install.sh | bash -s -- %s: exit %s in %ss)\n' "$*" "$rc" $((SECONDS - started))
  return "$rc"
}

# Never replace an installation this test did not make.
if [ -e /etc/pressluft/server.toml ] && [ ! -e "$MARKER" ]; then
  fail "Pressluft is installed on this machine (/etc/pressluft/server.toml); the install test would replace it"
fi
mkdir -p "$(dirname "$MARKER")"
touch "$MARKER"
if [ -e /etc/pressluft/server.toml ]; then
  echo "== removing what an interrupted run left"
  bash install.sh --uninstall --purge >/dev/null
fi

work=$(mktemp -d)
log=$work/install.log
export PATH=/usr/local/bin:$PATH PRESSLUFT_CONFIG=$work/cli.toml
unset PRESSLUFT_TOKEN PRESSLUFT_SERVER
archive=$(scripts/package.sh --profile dev | tail -n 1)
sha=$(cut -d' ' -f1 "$archive.sha256")
# Ports this machine serves beyond loopback (its management port) stay open in the firewall.
ports=$(ss -Hltn | awk '{print $4}' | grep -v -e '^127\.' -e '^\[::1\]' | sed 's/.*://' \
  | grep -vx -e 22 -e 80 -e 443 | sort -un | paste -sd, -)
common=(--admin-email "$ADMIN" --wordpress-source-dir /usr/share/wordpress --firewall-allow-tcp "$ports")

echo "== a wrong checksum installs nothing"
if run_install --release-url "file://$PWD/$archive" --sha256 "$(printf '0%.0s' {1..64})" "${common[@]}"; then
  fail "install.sh accepted a wrong --sha256"
fi
check "the refusal names the checksum" grep -q "SHA-256 is not" "$log"
check "no binary, user or configuration was created" \
  test ! -e /usr/local/bin/pressluft-server -a ! -e /etc/pressluft/server.toml -a ! -e /var/lib/pressluft
id pressluft >/dev/null 2>&1 && fail "the pressluft user exists after a refused install"

echo "== install from the release archive, the script piped into bash (curl | bash)"
run_piped --release-url "file://$PWD/$archive" --sha256 "$sha" "${common[@]}" || fail "install.sh failed"
check "the service answers /healthz" test "$(health)" = ok
check "the server runs as the pressluft user" test "$(ps -o user= -p "$(server_pid)")" = pressluft
check "the configuration is root's, readable by the service only" test "$(mode /etc/pressluft/server.toml)" = "640 root:pressluft"
check "the data directory is the service's alone" test "$(mode /var/lib/pressluft)" = "700 pressluft:pressluft"
check "the secrets directory is 0700" test "$(mode /var/lib/pressluft/secrets)" = "700 pressluft:pressluft"
check "the credentials file is root's alone" test "$(mode "$CREDENTIALS")" = "600 root:root"
password=$(sed -n 's/^password=//p' "$CREDENTIALS")
check "the password is long" test "${#password}" -ge 24
check "the password is in no log" bash -c "! grep -rqF -- '$password' '$log' /var/log/pressluft"
check "metrics answer on their own port" bash -c 'curl -fsS http://127.0.0.1:9464/metrics | grep -q "^pressluft_nodes{status=\"active\"} 1$"'

printf '%s\n' "$password" | cli login --email "$ADMIN" --password-stdin >/dev/null || fail "CLI login"
check "the administrator is logged in with the CLI" test "$(cli whoami -o json | json 'd["user"]["email"]')" = "$ADMIN"
nodes=$(cli node list -o json)
check "one node: this machine, local, active" test "$(printf '%s' "$nodes" | json '[(n.get("is_local", False), n["status"], n["ssh_user"]) for n in d["nodes"]]')" = "[(True, 'NODE_STATUS_ACTIVE', 'pressluft-node')]"
node_id=$(printf '%s' "$nodes" | json 'd["nodes"][0]["id"]')
check "provisioned through the job queue" test "$(cli job list --type node_provision -o json | json '[j["status"] for j in d["jobs"]]')" = "['JOB_STATUS_SUCCEEDED']"
check "the install token is revoked" test "$(cli token list -o json | json 'all(t.get("revoke_time") for t in d["tokens"] if t["name"].startswith("install.sh"))')" = True
check "the node user may sudo without a password" bash -c 'sudo -l -U pressluft-node | grep -q "NOPASSWD: ALL"'
check "the node user trusts the control plane's key only, from this machine, restricted" \
  diff <(printf 'from="127.0.0.1,::1",restrict %s\n' "$(runuser -u pressluft -- pressluft-server --config /etc/pressluft/server.toml admin ssh-key)") /home/pressluft-node/.ssh/authorized_keys

bash install.sh --print-systemd-unit >"$work/pressluft.service"
check "the systemd unit verifies" systemd-analyze verify "$work/pressluft.service"
exposure=$(systemd-analyze security --offline=true "$work/pressluft.service" 2>/dev/null | sed -n 's/.*Overall exposure level for pressluft.service: \([0-9.]*\).*/\1/p')
check "the systemd unit is hardened (exposure $exposure, OK below 3)" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e < 3) }'

check "logrotate rotates the server's log" bash -c "logrotate -f -s '$work/logrotate.state' /etc/logrotate.d/pressluft && test -s /var/log/pressluft/server.log.1"

echo "== a site on the local node, through the CLI"
cli site create --name "Install check" --slug "$SLUG" --wait >/dev/null || fail "site create"
site_id=$(cli site list -o json | json "[s['id'] for s in d['sites'] if s['slug'] == '$SLUG'][0]")
host=$(cli site show "$site_id" -o json | json 'd["environments"][0]["preview_url"].split("//")[1]')
check "the site's environment is active" test "$(cli site show "$site_id" -o json | json 'd["environments"][0]["status"]')" = ENVIRONMENT_STATUS_ACTIVE
check "WordPress answers at the preview address" bash -c "curl -fsS --resolve '$host:80:127.0.0.1' 'http://$host/' | grep -qi wordpress"
check "the server logs on after the rotation, from the file's start (copytruncate)" \
  bash -c "test -s /var/log/pressluft/server.log && ! grep -qaP '\\x00' /var/log/pressluft/server.log"

echo "== a second run: built from the checkout (--build), nothing else changes"
before_pid=$(server_pid)
before_files=$(sha256sum "$CREDENTIALS" /etc/pressluft/server.toml)
before_users=$(cli user list -o json | json 'len(d["users"])')
# The debug profile: the build path without a release build (cargo finds it up to date).
PRESSLUFT_CARGO_PROFILE=dev run_install --build "${common[@]}" || fail "second install.sh failed"
check "it built from the checkout" grep -q "cargo build --profile dev" "$log"
check "the service was restarted" test "$(server_pid)" != "$before_pid"
check "it answers again" test "$(health)" = ok
check "credentials and configuration are unchanged" test "$(sha256sum "$CREDENTIALS" /etc/pressluft/server.toml)" = "$before_files"
check "the CLI session survived the restart" test "$(cli whoami -o json | json 'd["user"]["email"]')" = "$ADMIN"
check "no second user" test "$(cli user list -o json | json 'len(d["users"])')" = "$before_users"
check "no second node" test "$(cli node list -o json | json '[n["id"] for n in d["nodes"]]')" = "['$node_id']"
check "no second provisioning" test "$(cli job list --type node_provision -o json | json 'len(d["jobs"])')" = 1
check "the site is still there and active" test "$(cli site show "$site_id" -o json | json 'd["environments"][0]["status"]')" = ENVIRONMENT_STATUS_ACTIVE

echo "== --uninstall keeps the data"
bash install.sh --uninstall | tee "$log"
check "the service is gone" bash -c '! curl -fsS --max-time 2 http://127.0.0.1:8443/healthz 2>/dev/null'
check "no server process is left" bash -c '! pgrep -u pressluft -f pressluft-server'
check "binaries, playbooks, Ansible and the init script are removed" \
  test ! -e /usr/local/bin/pressluft-server -a ! -e /usr/local/bin/pressluft -a ! -e /usr/share/pressluft -a ! -e /opt/pressluft -a ! -e /etc/init.d/pressluft
check "database, secrets, configuration and credentials are kept" \
  test -s /var/lib/pressluft/pressluft.db -a -s /var/lib/pressluft/secrets/id_ed25519 -a -s /etc/pressluft/server.toml -a -s "$CREDENTIALS"
check "the users are kept" bash -c 'id pressluft >/dev/null && id pressluft-node >/dev/null'

echo "== installing again resumes with that data"
run_install --bin-dir target/debug "${common[@]}" || fail "install after uninstall failed"
check "the same node, still active" test "$(cli node list -o json | json '[(n["id"], n["status"]) for n in d["nodes"]]')" = "[('$node_id', 'NODE_STATUS_ACTIVE')]"
check "the site is still known" test "$(cli site show "$site_id" -o json | json 'd["slug"]')" = "$SLUG"
cli site delete "$site_id" --yes --wait >/dev/null || fail "site delete"
ok "the site was deleted through the job path"

echo "== --uninstall --purge removes everything"
bash install.sh --uninstall --purge | tee "$log"
check "configuration, data and logs are gone" test ! -e /etc/pressluft -a ! -e /var/lib/pressluft -a ! -e /var/log/pressluft
check "the users are gone" bash -c '! id pressluft 2>/dev/null && ! id pressluft-node 2>/dev/null'
check "the sudo entry is gone" test ! -e /etc/sudoers.d/pressluft-node

rm -f "$MARKER"
rm -rf "$work"
echo "install.sh: $passed checks passed"
