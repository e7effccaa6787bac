"""One error hierarchy for Strongroom.

Every layer raises these; ``api/errors.py`` maps each class to an HTTP status in
one table and renders Vault's ``{"errors": [...]}`` envelope, so Vault clients
(hvac, the vault CLI) raise what they would against Vault.  Third-party errors
(py-consul, requests, OS errors) are translated at the storage boundary.
"""


class StrongroomError(Exception):
    """Base of every error Strongroom raises on purpose."""

    def __init__(self, *messages: str):
        super().__init__(*messages)
        self.messages = [m for m in messages if m] or [self.default_message]

    default_message = "internal error"

    def __str__(self) -> str:
        return "; ".join(self.messages)


class InvalidRequest(StrongroomError):
    """The request is malformed or its parameters are invalid (400)."""

    default_message = "invalid request"


class PermissionDenied(StrongroomError):
    """The token is missing, invalid, expired or lacks a capability (403)."""

    default_message = "permission denied"


class UnsupportedPath(StrongroomError):
    """No route or mount handles this path (404)."""

    default_message = "unsupported path"


class NotFound(StrongroomError):
    """The path is routed but nothing is stored there (404, empty errors)."""

    default_message = ""

    def __init__(self, *messages: str):
        super().__init__(*messages)
        self.messages = [m for m in messages if m]


class MethodNotAllowed(StrongroomError):
    """The path exists but does not support this operation (405)."""

    default_message = "unsupported operation"


class RequestTooLarge(StrongroomError):
    """The body or a stored value exceeds a configured limit (413)."""

    default_message = "request body too large"


class UnsupportedMediaType(StrongroomError):
    """The request body's content type is not the one the operation needs (415)."""

    default_message = "unsupported media type"


class CheckAndSetMismatch(InvalidRequest):
    """A KV v2 ``cas`` did not match the current version (400)."""

    default_message = "check-and-set parameter did not match the current version"


class Sealed(StrongroomError):
    """The node is sealed (503)."""

    default_message = "Vault is sealed"


class NotInitialized(StrongroomError):
    """The storage holds no seal configuration yet (503 for data, 400 for unseal)."""

    default_message = "Vault is not initialized"


class AlreadyInitialized(InvalidRequest):
    """``sys/init`` on initialised storage (400)."""

    default_message = "Vault is already initialized"


class StandbyNoLeader(StrongroomError):
    """A standby cannot reach an active node (503)."""

    default_message = "local node not active but active cluster node not found"


class StorageUnavailable(StrongroomError):
    """The storage backend could not be reached or failed (503)."""

    default_message = "storage backend unavailable"


class ReadOnly(StrongroomError):
    """A write was attempted on a read-only storage view (performance standby)."""

    default_message = "cannot write to readonly storage"


class LockLost(StrongroomError):
    """A fenced write failed its ``check-session``: this node no longer leads."""

    default_message = "node is not the active node: lock lost"


class PreconditionFailed(StrongroomError):
    """The node has not caught up with the requested ``X-Vault-Index`` (412)."""

    default_message = "required index not yet reached"


class AuditFailed(StrongroomError):
    """Every enabled audit device failed to log the request (500)."""

    default_message = "failed to log request to any audit device"


class IntegrityError(StrongroomError):
    """A stored value failed authentication: tampered, moved to another path,
    or encrypted under an unknown keyring term (500)."""

    default_message = "stored value failed integrity check"


class WriteConflict(StrongroomError):
    """A ``check-index`` or ``check-not-exists`` of a transaction failed: another
    writer (thread, worker process or node) changed the key since it was read.
    Nothing was written.

    Never meant for a client: the caller re-reads and retries its whole
    read-modify-write cycle, and gives up with ``StorageUnavailable`` only after
    a bounded number of attempts.  ``key`` is the backend key whose check failed
    when the backend can tell (storage keys are not secret; values are).
    """

    default_message = "storage write conflict: a checked key changed concurrently"

    def __init__(self, *messages: str, key: str | None = None):
        super().__init__(*messages)
        self.key = key
