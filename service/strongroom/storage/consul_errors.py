"""Consul's errors as Strongroom's: the one place where third-party exceptions are caught.

``consul_errors`` and ``error_for_status`` turn what py-consul, requests,
urllib3, http.client and sockets raise, and Consul's non-2xx answers, into
``StorageUnavailable``, ``RequestTooLarge`` or ``InvalidRequest``.  Messages
carry status codes and Consul's own error text (capped, quoted keys redacted),
never values.

It imports none of those libraries: an exception of one of them can only
exist once its module is loaded, so their classes are looked up in
``sys.modules`` when needed (``_classes``).  A gunicorn worker, which reaches
Consul through ``consul_transport`` alone, never loads py-consul or requests.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import sys
from collections.abc import Iterator
from typing import Any

from strongroom import metrics
from strongroom.errors import InvalidRequest, RequestTooLarge, StorageUnavailable

_STATUS_PREFIX = re.compile(r"^(\d{3}) ")


def raw_response(response: Any) -> Any:
    """py-consul callback that hands back the response untouched, so the caller
    sees status, headers and body (py-consul's own callbacks hide the 409 body)."""
    return response


def error_for_status(code: int, body: str, what: str) -> Exception:
    """The Strongroom error for a non-2xx Consul answer to ``what``."""
    # Consul's error bodies name keys and limits, never values; cap them anyway
    # so an unexpected body cannot flood logs or client responses.
    # Keys are quoted in them, and a key names a mount's UUID and a secret's
    # path or its hash: those are redacted, as they reach the client.
    detail = redact_keys(" ".join((body or "").split()))[:200]
    metrics.count_consul_error("http_5xx" if code >= 500 else "http_4xx" if code >= 400 else "other")
    if code == 413:
        return RequestTooLarge(f"consul rejected {what} as too large: {detail}")
    if code in (401, 403):
        return StorageUnavailable(
            f"consul denied {what} (HTTP {code}): the Consul ACL token lacks permission "
            "for the storage prefix or sessions"
        )
    if code == 400:
        return InvalidRequest(f"consul rejected {what}: {detail}")
    if code >= 500:
        return StorageUnavailable(f"consul failed {what} (HTTP {code}): {detail}")
    return StorageUnavailable(f"consul answered {what} with HTTP {code}")


_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')


def redact_keys(text: str) -> str:
    """``text`` (an error from Consul) with every quoted string, a storage key in
    Consul's messages, replaced by ``"..."``: messages reach clients."""
    return _QUOTED.sub('"..."', text)


@contextlib.contextmanager
def consul_errors(address: str, what: str) -> Iterator[None]:
    """Translate everything py-consul and the HTTP stack raise into Strongroom errors.

    The only place (with ``error_for_status``) where third-party exceptions are
    caught; ``storage/consul_session.py`` uses it too.  ``address`` is the base
    URI (no token); ``what`` names the operation for the message.
    """
    try:
        yield
    except _classes("consul", "ACLPermissionDenied"):
        raise error_for_status(403, "", what) from None
    except _classes("consul", "ACLDisabled"):
        raise error_for_status(401, "", what) from None
    except _classes("consul", "ConsulException") as exc:
        # py-consul folds status and body into the message ("503 No cluster
        # leader"); the body is not re-chained because a garbled 200 body (the
        # "Failed to decode JSON" case) could hold values.
        text = str(exc)
        match = _STATUS_PREFIX.match(text)
        if match is None:
            metrics.count_consul_error("other")
            raise StorageUnavailable(f"consul at {address} returned an unreadable answer to {what}") from None
        raise error_for_status(int(match.group(1)), text[4:], what) from None
    except _transport_errors() as exc:
        metrics.count_consul_error(transport_error_kind(exc))
        raise StorageUnavailable(f"consul at {address} unreachable during {what} ({type(exc).__name__})") from exc


def transport_error_kind(exc: BaseException) -> str:
    """``timeout`` or ``connection`` for an error of the HTTP stack talking to Consul, else ``other``."""
    timeouts = (*_classes("requests", "Timeout"), *_classes("urllib3.exceptions", "TimeoutError"))
    if isinstance(exc, (TimeoutError, *timeouts)):
        return "timeout"
    connections = (*_classes("requests", "ConnectionError"), *_classes("urllib3.exceptions", "ProtocolError"))
    if isinstance(exc, (ConnectionError, OSError, *connections)):
        return "connection"
    return "other"


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What the HTTP stacks raise when Consul cannot be reached or answers garbage."""
    stacks = (*_classes("requests", "RequestException"), *_classes("urllib3.exceptions", "HTTPError"))
    return (*stacks, http.client.HTTPException, OSError)


def _classes(module: str, name: str) -> tuple[type[BaseException], ...]:
    """``(module.name,)`` when ``module`` is loaded, else ``()``: nothing can
    raise an exception of a class whose module was never imported, and
    ``except ()`` catches nothing."""
    loaded = sys.modules.get(module)
    found = getattr(loaded, name, None) if loaded is not None else None
    return (found,) if isinstance(found, type) and issubclass(found, BaseException) else ()
