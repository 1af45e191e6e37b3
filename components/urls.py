"""Endpoint addresses as they may be shown: never with the credentials some carry."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``url`` without credentials: user info and query values (``?key=...``) are masked, so an
    endpoint address can go into errors, logs and manifests."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = ("***@" if parts.username or parts.password else "") + host + (f":{parts.port}" if parts.port else "")
    query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def endpoint_url(base_url: str, route: str) -> str:
    """``base_url`` with ``route`` appended to its path, its query (e.g. ``?api-version=``) kept."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + route, parts.query, parts.fragment))
