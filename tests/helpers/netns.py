"""A test host in a network namespace of the test's own, linked to the root
namespace by a veth pair whose link the test can cut.

Only addresses on this pair are used (10.231.<k>.1 on the root side,
10.231.<k>.2 inside), and the namespace and links are deleted afterwards.
Needs root and ``ip`` (Debian package iproute2, installed by ``make deps``).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import uuid


def _ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run(prefix + ["ip", *args], check=True, capture_output=True, timeout=10)


class NetnsHost:
    """``root_address`` (root side) and ``address`` (inside ``name``); ``cut()`` and ``heal()`` the link."""

    def __init__(self):
        if shutil.which("ip") is None:
            raise RuntimeError("the `ip` command is missing: run `make deps` (apt-get install iproute2)")
        tag = uuid.uuid4().hex[:6]
        self.name = f"sr{tag}"
        self.root_link = f"sr{tag}h"
        self.inner_link = f"sr{tag}n"
        subnet = random.randint(1, 250)
        self.root_address = f"10.231.{subnet}.1"
        self.address = f"10.231.{subnet}.2"

    def __enter__(self) -> NetnsHost:
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.root_link, "type", "veth", "peer", "name", self.inner_link)
            _ip("link", "set", self.inner_link, "netns", self.name)
            _ip("addr", "add", f"{self.root_address}/30", "dev", self.root_link)
            _ip("link", "set", self.root_link, "up")
            _ip("addr", "add", f"{self.address}/30", "dev", self.inner_link, netns=self.name)
            _ip("link", "set", self.inner_link, "up", netns=self.name)
            _ip("link", "set", "lo", "up", netns=self.name)
        except BaseException:
            self.__exit__()
            raise
        return self

    def cut(self) -> None:
        """Take the link down: the host can no longer reach, nor be reached from, the root namespace."""
        _ip("link", "set", self.root_link, "down")

    def heal(self) -> None:
        _ip("link", "set", self.root_link, "up")

    def __exit__(self, *exc_info) -> None:
        subprocess.run(["ip", "link", "del", self.root_link], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
