#!/usr/bin/env bash
# What a newcomer's `cargo test` does, proven on every run: every test binary of the workspace
# runs as an unprivileged user, with none of the test bed's settings and no Ansible on PATH.
# The hermetic tests must pass; the real-node tests are ignored by name, each saying why (they
# are `#[ignore = "real node: ..."]` and scripts/test.sh runs them with --include-ignored).
# Usage: scripts/test-newcomer.sh (root; after `cargo build --workspace --bins`).
set -euo pipefail
cd "$(dirname "$0")/.."

user=pressluft-newcomer
home=/var/tmp/$user
if ! id "$user" >/dev/null 2>&1; then
  useradd --system --home-dir "$home" --shell /usr/sbin/nologin "$user"
fi
install -d -o "$user" -m 0700 "$home"

mapfile -t binaries < <(cargo test --workspace --lib --bins --tests --no-run --message-format=json |
  jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null)
         | [.executable, (.manifest_path | sub("/Cargo.toml$"; "")), .target.name] | @tsv')
((${#binaries[@]})) || { echo "no test binaries were built" >&2; exit 1; }

log=$(mktemp)
failed=()
for line in "${binaries[@]}"; do
  IFS=$'\t' read -r exe dir name <<<"$line"
  echo "-- $name as $user, without the test bed"
  status=0
  (cd "$dir" && runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" \
    TMPDIR="$home" "$exe" --test-threads 2) >>"$log" 2>&1 || status=$?
  ((status == 0)) || failed+=("$name")
done
grep -E '^test result:' "$log" || true
if ((${#failed[@]})); then
  grep -E '^(test .* FAILED|---- |thread .* panicked)' "$log" | head -40 >&2
  echo "FAILED without the test bed: ${failed[*]} (full log: $log)" >&2
  exit 1
fi
awk '/^test result:/ { p += $4; i += $8 }
     END { printf "newcomer run: %d hermetic tests passed, %d real-node tests ignored (scripts/test.sh runs them)\n", p, i }' "$log"
if ! grep -q 'ignored, real node' "$log"; then
  echo "no test said why it was ignored" >&2
  exit 1
fi
rm -f "$log"
