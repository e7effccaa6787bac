#!/usr/bin/env bash
# Fetch the real consul binary from Debian's bullseye archive into tools/consul,
# without touching the machine's apt sources (DESIGN.md, "Real components").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/tools"
if [ -x "$dest/consul/usr/bin/consul" ]; then exit 0; fi
if command -v consul >/dev/null 2>&1; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=/etc/apt/sources.list.d/debian.sources
uris=$(awk '/^URIs:/{print $2; exit}' "$src" 2>/dev/null || true)
signed=$(awk '/^Signed-By:/{print $2; exit}' "$src" 2>/dev/null || true)
uris=${uris:-http://deb.debian.org/debian}
signed=${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}
mkdir -p "$work/parts" "$work/lists/partial" "$work/archives/partial"
cat > "$work/parts/bullseye.sources" <<SRC
Types: deb
URIs: $uris
Suites: bullseye
Components: main
Signed-By: $signed
SRC
opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/parts"
      -o Dir::State::Lists="$work/lists" -o Dir::Cache::Archives="$work/archives"
      -o Debug::NoLocking=1)
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download consul)
mkdir -p "$dest/consul"
dpkg -x "$work"/consul_*.deb "$dest/consul"
"$dest/consul/usr/bin/consul" version | head -1
