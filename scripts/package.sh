#!/usr/bin/env bash
# Builds the release archive install.sh installs from:
#   target/pressluft-VERSION-linux-ARCH.tar.gz (+ .sha256)
# holding bin/ (pressluft-server, pressluft, pressluft-tui), playbooks/, install.sh, README.md
# and docs/. `--profile dev` packages the debug build (the tests do, to save a release build).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
while [ $# -gt 0 ]; do
  case $1 in
    --profile) profile=${2:?--profile needs release or dev}; shift ;;
    *) echo "usage: scripts/package.sh [--profile release|dev]" >&2; exit 2 ;;
  esac
  shift
done
case $profile in
  release) out_dir=target/release ;;
  dev) out_dir=target/debug ;;
  *) echo "package.sh: --profile is release or dev, not $profile" >&2; exit 2 ;;
esac

cargo build --locked --bins --profile "$profile"
version=$("$out_dir/pressluft-server" --version | awk '{print $2}')
name=pressluft-$version-linux-$(uname -m)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/bin"
for binary in pressluft-server pressluft pressluft-tui; do
  install -m 0755 "$out_dir/$binary" "$stage/$name/bin/$binary"
done
cp -r playbooks docs install.sh README.md "$stage/$name/"
# No build leftovers (Python caches) in the archive; owner and times fixed for repeatability.
find "$stage/$name" -name __pycache__ -prune -exec rm -rf {} +
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name -czf "target/$name.tar.gz" "$name"
(cd target && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "target/$name.tar.gz"
