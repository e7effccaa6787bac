#!/usr/bin/env bash
# Build the Debian bookworm image that the deploy tier and `make cluster` boot as
# systemd hosts (DESIGN.md, "systemd hosts in podman"): debootstrap a rootfs,
# `podman import` it as a local image.  No registry is ever contacted.
#
# Prints the image's tag on stdout (the last line).  Idempotent and quick on a
# second run: the tag carries a hash of this script, so an image built by this
# very script is reused as it is; the rootfs tarball is cached outside the
# repository ($STRONGROOM_HOST_IMAGE_CACHE, default /var/cache/strongroom/host-image),
# so a removed image is re-imported in seconds without a new debootstrap.
#
#   scripts/build-host-image.sh            build if needed, print the tag
#   scripts/build-host-image.sh --tag      print the tag only, build nothing
#
# The Debian mirror is the machine's own (the URIs of
# /etc/apt/sources.list.d/debian.sources, as scripts/install-consul.sh reads
# them), and the image gets that same sources file, so the hosts' apt reaches
# what this machine reaches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
hash=$(sha256sum "$self" | cut -c1-12)
tag="localhost/strongroom-host:bookworm-$hash"
if [ "${1:-}" = "--tag" ]; then echo "$tag"; exit 0; fi

# python3-apt: Ansible's apt module; python3-packaging: its pip module; acl:
# become_user to an unprivileged user; openssh-server: Ansible reaches the
# hosts over SSH as root, by key only, as it reaches real machines; the rest is
# what a small Debian server has and the roles may expect.
packages=python3,python3-apt,python3-packaging,python3-venv,systemd,systemd-sysv,dbus,iproute2,iputils-ping,
packages+=ca-certificates,curl,sudo,acl,procps,less,gnupg,unzip,openssh-server
cache=${STRONGROOM_HOST_IMAGE_CACHE:-/var/cache/strongroom/host-image}
tarball="$cache/rootfs-$hash.tar"

# Podman's helper processes inherit open descriptors: every podman call below
# closes the lock's descriptor (9>&-), or a lingering helper would hold it.
if podman image exists "$tag" 9>&-; then echo "$tag"; exit 0; fi
for tool in podman debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build-host-image: $tool not found (make deps)" >&2; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then echo "build-host-image: debootstrap needs root" >&2; exit 1; fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if podman image exists "$tag" 9>&-; then echo "$tag"; exit 0; fi

if [ ! -s "$tarball" ]; then
    src=/etc/apt/sources.list.d/debian.sources
    mirror=$(awk '/^URIs:/{print $2; exit}' "$src" 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    work=$(mktemp -d "$cache/.build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    root="$work/rootfs"
    echo "build-host-image: debootstrap bookworm from $mirror (about 80 s)" >&2
    debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
        tail -30 "$work/debootstrap.log" >&2
        [ -f "$root/debootstrap/debootstrap.log" ] && tail -30 "$root/debootstrap/debootstrap.log" >&2
        exit 1
    }
    if [ -f "$src" ]; then
        cp "$src" "$root/etc/apt/sources.list.d/debian.sources"
        rm -f "$root/etc/apt/sources.list"
    fi
    # The lists go (stale within days), and with them anything that tells
    # Ansible's `apt: cache_valid_time` the cache is fresh: it trusts the
    # periodic stamp, else the mtime of the lists folder, and a skipped update
    # finds no packages (DESIGN.md).
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root/var/lib/apt/periodic/update-success-stamp"
    mkdir -p "$root/var/lib/apt/lists/partial"
    touch -d @0 "$root/var/lib/apt/lists"
    # systemd writes a new machine id at the first boot of each container.
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    # Units a container has no use for (no consoles, no kernel to tune).
    for unit in getty.target console-getty.service systemd-sysctl.service \
                systemd-modules-load.service sys-kernel-config.mount; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
    echo "strongroom-host" >"$root/etc/hostname"
    # sshd: root by key only (the key is the run's own, bind-mounted read-only
    # at /root/.ssh/authorized_keys by tests/helpers/procs/podman_hosts.py).
    # The host keys made by the package's postinst would be shared by every
    # container: they go, and each host makes its own at its first boot.
    rm -f "$root"/etc/ssh/ssh_host_*
    cat >"$root/etc/ssh/sshd_config.d/strongroom.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
    mkdir -p "$root/etc/systemd/system/ssh.service.d"
    cat >"$root/etc/systemd/system/ssh.service.d/host-keys.conf" <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOF
    mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
    ln -sf /lib/systemd/system/ssh.service "$root/etc/systemd/system/multi-user.target.wants/ssh.service"
    install -d -m 0700 "$root/root/.ssh"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    # Tarballs of earlier versions of this script are of no further use.
    find "$cache" -maxdepth 1 -name 'rootfs-*.tar' ! -name "rootfs-$hash.tar" -delete
fi

echo "build-host-image: importing $tarball as $tag" >&2
podman import \
    --change 'CMD ["/sbin/init"]' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change 'ENV container=podman' \
    "$tarball" "$tag" >/dev/null 9>&-
# Images of earlier versions of this script go too, unless a container still uses one.
# (grep finds none on a machine that never had an earlier one: not an error.)
podman images --format '{{.Repository}}:{{.Tag}}' --filter reference=localhost/strongroom-host 9>&- |
    { grep -vxF "$tag" || true; } | while read -r old; do podman rmi "$old" >/dev/null 2>&1 9>&- || true; done
echo "$tag"
