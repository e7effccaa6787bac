"""The KV v2 data model: mount config, key metadata, version metadata.

Each of these is stored as compact JSON (``encode``/``decode``) under the
barrier; where, and how reads and writes stay consistent, is
``store.VersionedStore``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom import jsoncodec
from strongroom.durations import format_duration
from strongroom.timefmt import rfc3339_ns

# Vault keeps 10 versions unless the key or the mount says otherwise.
DEFAULT_MAX_VERSIONS = 10
# Stored in Config.delete_version_after when a negative duration disabled it.
DELETE_VERSION_AFTER_DISABLED = -1


def encode(value: Any) -> bytes:
    """Compact JSON bytes, as every KV value is stored."""
    return jsoncodec.dumps(value)


def decode(raw: bytes) -> Any:
    """The value of stored JSON bytes."""
    return jsoncodec.loads(raw)


@dataclass
class Config:
    """The mount-wide settings of ``<mount>/config``."""

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0

    @property
    def delete_version_after_disabled(self) -> bool:
        return self.delete_version_after < 0

    def render(self) -> dict:
        """The body of ``GET <mount>/config``."""
        return {
            "cas_required": self.cas_required,
            "delete_version_after": format_duration(self.delete_version_after),
            "max_versions": self.max_versions,
        }

    def to_json(self) -> dict:
        """The stored form."""
        return {
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "delete_version_after": self.delete_version_after,
        }

    @classmethod
    def from_json(cls, raw: dict) -> Config:
        """From the stored form."""
        return cls(
            max_versions=int(raw.get("max_versions", 0)),
            cas_required=bool(raw.get("cas_required", False)),
            delete_version_after=int(raw.get("delete_version_after", 0)),
        )


@dataclass
class VersionMetadata:
    """What the metadata keeps of one version (times in ns since the epoch)."""

    created_time: int
    deletion_time: int | None = None
    destroyed: bool = False
    #: Where its data was written: a blob (True), the secret's folder (False),
    #: or not recorded (None: metadata written before this was kept).
    blob: bool | None = None

    def is_deleted(self, now: int) -> bool:
        """Soft-deleted: its deletion time (explicit or from delete_version_after) has come."""
        return self.deletion_time is not None and self.deletion_time <= now

    def render(self) -> dict:
        """The per-version entry of a metadata read."""
        return {
            "created_time": rfc3339_ns(self.created_time),
            "deletion_time": rfc3339_ns(self.deletion_time),
            "destroyed": self.destroyed,
        }


@dataclass
class KeyMetadata:
    """The metadata of one secret path: its settings and the metadata of every retained version."""

    path: str
    versions: dict[int, VersionMetadata] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    created_time: int | None = None
    updated_time: int | None = None
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None

    def add_version(
        self, created: int, deletion: int | None, config_max_versions: int
    ) -> tuple[VersionMetadata, list[tuple[int, bool | None]]]:
        """Append a version and slide the ``max_versions`` window (Vault's AddVersion).

        The limit is the larger of the key's and the mount's ``max_versions``,
        else 10.  Returns the new version and the numbers of the pruned versions
        whose data is still stored, with where it is (``VersionMetadata.blob``)."""
        version = VersionMetadata(created_time=created, deletion_time=deletion)
        self.current_version += 1
        self.versions[self.current_version] = version
        self.updated_time = created
        if self.created_time is None:
            self.created_time = created
        limit = self.retained_versions(config_max_versions)
        pruned: list[tuple[int, bool | None]] = []
        if self.current_version - self.oldest_version >= limit:
            last_to_delete = self.current_version - limit
            for number in sorted(n for n in self.versions if n <= last_to_delete):
                gone = self.versions.pop(number)
                if not gone.destroyed:
                    pruned.append((number, gone.blob))
            self.oldest_version = last_to_delete + 1
        return version, pruned

    def retained_versions(self, config_max_versions: int) -> int:
        """How many versions are kept: the larger of the key's and the mount's ``max_versions``, else 10."""
        return max(self.max_versions, config_max_versions) or DEFAULT_MAX_VERSIONS

    def version_summary(self, number: int) -> dict:
        """The per-version shape of data writes and of ``metadata`` in data reads."""
        version = self.versions[number]
        return {
            "created_time": rfc3339_ns(version.created_time),
            "custom_metadata": self.custom_metadata,
            "deletion_time": rfc3339_ns(version.deletion_time),
            "destroyed": version.destroyed,
            "version": number,
        }

    def render(self) -> dict:
        """The body of ``GET <mount>/metadata/<path>``."""
        return {
            "cas_required": self.cas_required,
            "created_time": rfc3339_ns(self.created_time),
            "current_version": self.current_version,
            "custom_metadata": self.custom_metadata,
            "delete_version_after": format_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "oldest_version": self.oldest_version,
            "updated_time": rfc3339_ns(self.updated_time),
            "versions": {str(n): v.render() for n, v in sorted(self.versions.items())},
        }

    def to_json(self) -> dict:
        """The stored form (versions as ``[created, deletion, destroyed]``)."""
        return {
            "path": self.path,
            "current_version": self.current_version,
            "oldest_version": self.oldest_version,
            "created_time": self.created_time,
            "updated_time": self.updated_time,
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "delete_version_after": self.delete_version_after,
            "custom_metadata": self.custom_metadata,
            "versions": {
                str(n): [v.created_time, v.deletion_time, v.destroyed, *([] if v.blob is None else [v.blob])]
                for n, v in self.versions.items()
            },
        }

    @classmethod
    def from_json(cls, raw: dict) -> KeyMetadata:
        """From the stored form."""
        return cls(
            path=raw["path"],
            versions={
                int(n): VersionMetadata(
                    created_time=v[0], deletion_time=v[1], destroyed=v[2], blob=v[3] if len(v) > 3 else None
                )
                for n, v in raw.get("versions", {}).items()
            },
            current_version=raw.get("current_version", 0),
            oldest_version=raw.get("oldest_version", 0),
            created_time=raw.get("created_time"),
            updated_time=raw.get("updated_time"),
            max_versions=raw.get("max_versions", 0),
            cas_required=raw.get("cas_required", False),
            delete_version_after=raw.get("delete_version_after", 0),
            custom_metadata=raw.get("custom_metadata"),
        )
