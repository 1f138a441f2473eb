"""Notification URLs: what Square accepts as a webhook subscription's target."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback", "url_problem"]


def is_loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a notification URL, or None when it can."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "it is not a URL."
    if parts.scheme not in ("http", "https") or not host:
        return "an absolute https:// URL is required."
    if parts.scheme == "http" and not is_loopback(host):
        return "use https://, or http:// on a loopback host (localhost, 127.0.0.1, [::1])."
    if parts.fragment:
        return "a notification URL cannot have a fragment."
    return None
