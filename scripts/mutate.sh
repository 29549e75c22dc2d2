#!/usr/bin/env bash
# Breaks, in the working tree of checkout DIR, behaviours that the slow real-node tests guard,
# to show that those tests fail when the behaviour breaks (a test that cannot fail proves
# nothing). Usage:
#
#   scripts/mutate.sh DIR playbooks   then: cargo test -p pressluft-server --test server -- \
#       engine::node_provision_configures engine::a_deploy_switches_releases_with_zero_downtime recovery::
#   scripts/mutate.sh DIR tenant      then: cargo test -p pressluft-server --test server -- \
#       engine::sites_are_created_isolated security::a_hostile_tenant
#   scripts/mutate.sh DIR rust        then: cargo test -p pressluft-server --test server -- \
#       engine::a_job_past_its_timeout_is_stopped engine::scheduled_backups_fire
#
# Every named test must fail; undo with `git -C DIR checkout -- .` (and provision the test
# node again: the playbook group changes what it installs). Each mutation must apply.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DIR playbooks|tenant|rust" >&2; exit 2; }
cd "$1"

# sub FILE PATTERN REPLACEMENT: one Python regex substitution (multi-line mode), or fail.
sub() {
  python3 - "$@" <<'PY'
import re, sys
path, pattern, repl = sys.argv[1:4]
text = open(path).read()
new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
if n != 1:
    sys.exit(f"mutation did not apply: {path}: {pattern}")
open(path, "w").write(new)
PY
}

case $2 in
  playbooks)
    # node_provision configures PHP-FPM wrong.
    sub playbooks/roles/php/tasks/main.yml 'process_control_timeout = 20s' 'process_control_timeout = 30s'
    # A detached step is started again instead of re-attached after a crash.
    # shellcheck disable=SC2016 # $dir is the helper's own variable
    sub playbooks/roles/detached/files/pressluft-detached \
      'if mkdir "\$dir" 2>/dev/null; then' 'rm -rf "$dir"; if mkdir "$dir" 2>/dev/null; then'
    # A deploy removes the live release's link before it makes the new one.
    sub playbooks/roles/go_live/tasks/main.yml \
      '^    - name: Switch current to the new release \(atomic rename\)' \
      '    - name: Remove current first (mutation)\n      ansible.builtin.shell: rm -f {{ go_live_root }}/current && sleep 3\n      changed_when: true\n\n    - name: Switch current to the new release (atomic rename)'
    ;;
  tenant)
    # nginx follows a tenant's link to another site's upload.
    # shellcheck disable=SC2016 # nginx's variable, not the shell's
    sub playbooks/roles/vhost/templates/server.conf.j2 '^    disable_symlinks if_not_owner from=\$document_root;\n' ''
    # A clone copies the tenant's uploads following its links (as root).
    # shellcheck disable=SC2016 # the helper's own variable
    sub playbooks/files/pressluft-env-clone '^cp -a "\$src_root/shared/uploads"' 'cp -aL "$src_root/shared/uploads"'
    ;;
  rust)
    # The job timeout is never reached.
    sub server/src/executor/ansible.rs \
      'let deadline = tokio::time::sleep\(spec\.timeout\);' 'let deadline = tokio::time::sleep(spec.timeout * 1000);'
    # Scheduled backups fire at a quarter of their interval.
    sub server/src/store/queue.rs 'e\.backup_interval_secs \* 1000 <= \?' 'e.backup_interval_secs * 250 <= ?'
    ;;
  *) echo "usage: $0 DIR playbooks|tenant|rust" >&2; exit 2 ;;
esac
echo "applied the $2 mutations in $1"
