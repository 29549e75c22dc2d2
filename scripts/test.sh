#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (root): installs what it needs (see
# scripts/testbed.sh), then lints, checks the contract and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck disable=SC1090
source <(scripts/testbed.sh)
# rclone and friends break with the machine's AWS_CA_BUNDLE; the suite never needs it.
unset AWS_CA_BUNDLE

echo "== cargo fmt"
cargo fmt --all --check
echo "== buf lint (STANDARD rules)"
(cd proto && npx --yes @bufbuild/buf@1.75.0 lint)
echo "== shellcheck"
shellcheck install.sh scripts/*.sh
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== ansible syntax check"
shopt -s nullglob
for playbook in playbooks/*.yml server/tests/playbooks/*.yml; do
  ANSIBLE_CONFIG=playbooks/ansible.cfg PYTHONDONTWRITEBYTECODE=1 \
    ansible-playbook --syntax-check -i localhost, "$playbook" >/dev/null
done
echo "== ansible-lint (production profile)"
(cd playbooks && ANSIBLE_CONFIG=ansible.cfg PYTHONDONTWRITEBYTECODE=1 NO_COLOR=1 \
  ansible-lint --offline --profile production -q ./*.yml roles/)
echo "== cargo test"
cargo build --workspace --bins
log=$(mktemp)
# Four test threads: the real-node tests mostly wait (SSH, playbooks, HTTP), so two cores
# run four of them at once with room to spare.
cargo test --workspace --lib --bins --tests -- --test-threads 4 2>&1 | tee "$log"
echo "== install.sh on this machine"
# After the cargo tests, alone: it installs the service and provisions this machine over port 22.
scripts/test-install.sh
# One closing line for the whole suite (the install test exits non-zero on any failure).
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
