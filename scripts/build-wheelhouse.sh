#!/usr/bin/env bash
# Build a wheelhouse for hosts that cannot (or should not) reach PyPI: the
# Strongroom wheel from this work tree plus a wheel of every dependency, so the
# Ansible role installs with `pip install --no-index --find-links <dir>`.
#
#   scripts/build-wheelhouse.sh [DIR]     prints DIR (default below) on stdout
#   STRONGROOM_VERSION=0.1.1 scripts/build-wheelhouse.sh DIR   the wheel as that version
#
# DIR defaults to $STRONGROOM_WHEELHOUSE, else /var/cache/strongroom/wheelhouse,
# outside the repository.  Dependencies are fetched once per version of
# setup.cfg's requirements (a stamp named after their hash); the Strongroom
# wheel is rebuilt on every run (a few seconds), from a copy of the sources so
# nothing is written into the work tree or the editable install.  The wheels
# suit the hosts when they run this machine's Python minor version (3.11 on
# Debian bookworm, the image of scripts/build-host-image.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${STRONGROOM_WHEELHOUSE:-/var/cache/strongroom/wheelhouse}}
python=${PYTHON:-$repo/.venv/bin/python}
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp "$repo/setup.cfg" "$repo/pyproject.toml" "$repo/README.md" "$work/src/"
# STRONGROOM_VERSION=X builds the wheel as version X (the deploy tier's upgrade).
if [ -n "${STRONGROOM_VERSION:-}" ]; then
    sed -i "s/^version = .*/version = $STRONGROOM_VERSION/" "$work/src/setup.cfg"
fi
tar -C "$repo" --exclude='*.egg-info' --exclude=__pycache__ -cf - service | tar -C "$work/src" -xf -

requirements=$(sed -n '/^install_requires *=/,/^[^ ]/p' "$repo/setup.cfg")
stamp="$dir/.deps-$(printf '%s' "$requirements" | sha256sum | cut -c1-12)"
rm -f "$dir"/strongroom-*.whl
if [ -f "$stamp" ]; then
    "$python" -m pip wheel -q --no-deps -w "$dir" "$work/src" >&2
else
    echo "build-wheelhouse: fetching Strongroom's dependencies into $dir" >&2
    "$python" -m pip wheel -q -w "$dir" "$work/src" >&2
    rm -f "$dir"/.deps-*
    touch "$stamp"
fi
ls "$dir"/strongroom-*.whl >/dev/null
echo "$dir"
