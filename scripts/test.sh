#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (root): installs what it needs (see
# scripts/testbed.sh), then lints, checks the contract and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck disable=SC1090
source <(scripts/testbed.sh)
# rclone and friends break with the machine's AWS_CA_BUNDLE; the suite never needs it.
unset AWS_CA_BUNDLE

# The fleet of bare machines (scripts/fleet.sh) starts in the background while the lints run:
# its first run builds base roots. It is gone when the suite ends, whatever the outcome.
fleet_specs=(bookworm1:bookworm noble1:noble trixie1:trixie probe:bookworm lossy:bookworm worker1:bookworm worker2:bookworm)
fleet_log=$(mktemp)
trap 'scripts/fleet.sh down >/dev/null 2>&1 || true; rm -f "$fleet_log"' EXIT
scripts/fleet.sh up "${fleet_specs[@]}" >"$fleet_log" 2>&1 &
fleet_pid=$!

echo "== cargo fmt"
cargo fmt --all --check
echo "== buf lint (STANDARD rules)"
(cd proto && npx --yes @bufbuild/buf@1.75.0 lint)
echo "== shellcheck"
shellcheck install.sh scripts/*.sh
echo "== node helpers (playbooks/files: shellcheck, pyflakes, php -l, by their first line)"
for helper in playbooks/files/*; do
  if [[ $helper == *.j2 ]]; then
    # A template: its Jinja syntax.
    python -c 'import jinja2, sys; jinja2.Environment().parse(open(sys.argv[1]).read())' "$helper"
    continue
  fi
  case $(head -n 1 "$helper") in
    *bash*) shellcheck "$helper" ;;
    *python3*) python -m pyflakes "$helper" ;;
    '<?php'*) php -l "$helper" >/dev/null ;;
    *) echo "$helper: no linter for its kind" >&2; exit 1 ;;
  esac
done
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
# One setting for slow or shared machines: fewer real-node tests at once. (Every wait in the
# tests scales with PRESSLUFT_TEST_PATIENCE, see testkit/src/lib.rs.)
threads=${PRESSLUFT_TEST_THREADS:-4}
case $threads in '' | *[!0-9]* | 0) echo "PRESSLUFT_TEST_THREADS must be a positive number" >&2; exit 2 ;; esac
cargo build --workspace --bins
# The UI is built in a copy under target/: the build leaves the source tree as it was.
if [ -n "$(git status --porcelain --ignored -- web)" ]; then
  echo "the build wrote into web/:" >&2
  git status --porcelain --ignored -- web >&2
  exit 1
fi
echo "== cargo test as a newcomer runs it (unprivileged, no test bed)"
scripts/test-newcomer.sh
echo "== the test fleet"
wait "$fleet_pid" || { cat "$fleet_log" >&2; echo "the fleet did not start" >&2; exit 1; }
PRESSLUFT_FLEET_NODES=
for spec in "${fleet_specs[@]}"; do
  ip=$(awk -v name="${spec%%:*}" '$1 == name { print $2 }' "$fleet_log")
  [ -n "$ip" ] || { cat "$fleet_log" >&2; echo "no address for ${spec%%:*}" >&2; exit 1; }
  PRESSLUFT_FLEET_NODES+="$spec:$ip "
done
PRESSLUFT_FLEET_KEY=$(scripts/fleet.sh key)
export PRESSLUFT_FLEET_NODES PRESSLUFT_FLEET_KEY
echo "$PRESSLUFT_FLEET_NODES"
log=$(mktemp)
times=$(mktemp)
# Every test binary, run directly from its package's directory (as cargo would) so each one's
# wall time is known; libtest's --report-time (behind RUSTC_BOOTSTRAP, for the test binaries
# only, never for rustc) gives every test's own time.
mapfile -t binaries < <(cargo test --workspace --lib --bins --tests --no-run --message-format=json |
  jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null)
         | [.executable, (.manifest_path | sub("/Cargo.toml$"; "")), .target.name, (.target.kind | join(","))] | @tsv')
((${#binaries[@]})) || { echo "no test binaries were built" >&2; exit 1; }
failed=()
for line in "${binaries[@]}"; do
  IFS=$'\t' read -r exe dir name kind <<<"$line"
  echo "-- $name ($kind) with $threads threads"
  start=$(date +%s)
  status=0
  # --include-ignored: the real-node tests (ignored by a plain `cargo test`) run here.
  (cd "$dir" && RUSTC_BOOTSTRAP=1 "$exe" --include-ignored --test-threads "$threads" \
    -Z unstable-options --report-time) 2>&1 |
    tee -a "$log" || status=$?
  printf '%s\t%s (%s)\n' "$(($(date +%s) - start))" "$name" "$kind" >>"$times"
  ((status == 0)) || failed+=("$name")
done
echo "== time per test binary (wall seconds)"
sort -rn "$times"
echo "== time per test file (seconds, the sum of its tests' own times)"
# "test engine::foo ... ok <12.345s>": the file is the module before '::' ("(one file)" for a
# binary whose tests are not in modules).
sed -n 's/^test \([^ ]*\) \.\.\. [a-zA-Z]* <\([0-9.]*\)s>$/\1 \2/p' "$log" |
  awk '{ file = ($1 ~ /::/) ? substr($1, 1, index($1, "::") - 1) : "(one file)"; sum[file] += $2 }
       END { for (f in sum) printf "%8.1f  %s\n", sum[f], f }' | sort -rn
echo "== slowest tests"
sed -n 's/^test \([^ ]*\) \.\.\. [a-zA-Z]* <\([0-9.]*\)s>$/\2 \1/p' "$log" | sort -rn | awk 'NR <= 10'
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "cargo tests: %d passed, %d failed, %d ignored\n", p, f, i; if (i > 0) exit 1 }' "$log" ||
  failed+=("(a test was ignored: the suite runs every test)")
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== install.sh on this machine"
# After the cargo tests, alone: it installs the service and provisions this machine over port 22.
scripts/test-install.sh
rm -f "$log" "$times"
echo "all tests passed"
