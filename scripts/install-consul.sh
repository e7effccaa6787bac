#!/usr/bin/env bash
# Fetch the real consul binary from Debian's bullseye archive into tools/consul,
# without touching the machine's apt sources (DESIGN.md, "Real components").
#
# Idempotent: does nothing when tools/consul/usr/bin/consul runs, when
# $CONSUL_BIN names a working binary, or when consul is on PATH.  The package
# is unpacked into a scratch folder and moved into place only once the binary
# has answered `consul version`, so an interrupted run never leaves a broken
# tools/consul behind.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/tools"
bin="$dest/consul/usr/bin/consul"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then exit 0; fi
if [ -n "${CONSUL_BIN:-}" ] && [ "$CONSUL_BIN" != "$bin" ] && "$CONSUL_BIN" version >/dev/null 2>&1; then exit 0; fi
if command -v consul >/dev/null 2>&1; then exit 0; fi
for tool in apt-get dpkg; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install-consul: $tool not found (Debian/Ubuntu only)" >&2; exit 1; }
done
mkdir -p "$dest"
work=$(mktemp -d "$dest/.consul-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=/etc/apt/sources.list.d/debian.sources
uris=$(awk '/^URIs:/{print $2; exit}' "$src" 2>/dev/null || true)
signed=$(awk '/^Signed-By:/{print $2; exit}' "$src" 2>/dev/null || true)
uris=${uris:-http://deb.debian.org/debian}
signed=${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}
mkdir -p "$work/parts" "$work/lists/partial" "$work/archives/partial" "$work/extract"
cat > "$work/parts/bullseye.sources" <<SRC
Types: deb
URIs: $uris
Suites: bullseye
Components: main
Signed-By: $signed
SRC
opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/parts"
      -o Dir::State::Lists="$work/lists" -o Dir::Cache::Archives="$work/archives"
      -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
echo "install-consul: fetching consul from Debian bullseye ($uris)" >&2
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download consul)
dpkg -x "$work"/consul_*.deb "$work/extract"
"$work/extract/usr/bin/consul" version | head -1
rm -rf "$dest/consul"
mv "$work/extract" "$dest/consul"
