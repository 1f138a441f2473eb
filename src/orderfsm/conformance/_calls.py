"""One step of a conformance run: an SDK call, written once and played three ways.

A :class:`Call` names an SDK method (``client.orders.update``) and its arguments. Arguments may
hold markers for values that differ between the oracle and the server (object ids, the location,
payment version tokens, idempotency keys); each side resolves the markers to its own values, and
the snippet renderer prints them as Python names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["Call", "Ref", "Token", "Version", "NamedKey", "Produce", "LOCATION", "KEY", "resolve",
           "source", "dig"]


@dataclass(frozen=True, slots=True)
class Ref:
    """The id of an object an earlier step created, by label (``o1``, ``p2``, ``r1``)."""

    label: str


@dataclass(frozen=True, slots=True)
class Token:
    """A payment's version_token: ``current`` (read now) or ``initial`` (from its creation)."""

    label: str
    which: str


@dataclass(frozen=True, slots=True)
class NamedKey:
    """An idempotency key a later call refers to again (CancelPaymentByIdempotencyKey)."""

    name: str


@dataclass(frozen=True, slots=True)
class Version:
    """An order's version as the side holds it right now (read before the call)."""

    label: str


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


LOCATION = _Marker("LOCATION")  # the merchant's main location id
KEY = _Marker("KEY")  # a fresh idempotency key


@dataclass(frozen=True, slots=True)
class Produce:
    """A label a successful call creates, read from the returned object's ``attr`` (a dotted
    path, where a number indexes a list: ``item_data.variations.0.id``)."""

    label: str
    attr: str = "id"


@dataclass(slots=True)
class Call:
    """``client.<resource>.<method>(*args, **kwargs)``; resource ``sim`` is the control API."""

    resource: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    produces: tuple[Produce, ...] = ()
    # A replay: the label of the object the first call with this idempotency key made or
    # changed; both sides must answer with that same object (not a new one).
    same_as: str | None = None
    # An Authorization header sent instead of the access token (None: the token).
    auth: str | None = None

    @property
    def result_name(self) -> str | None:
        """The key of the response that holds the main object (``order``, ``payment``...)."""
        if self.method in ("batch_get", "list", "search"):
            return None
        if self.method == "test":
            return "subscription_test_result"
        if self.resource == "catalog.object":
            return {"upsert": "catalog_object", "get": "object"}.get(self.method)
        return {"orders": "order", "payments": "payment", "refunds": "refund",
                "locations": "location", "webhooks.subscriptions": "subscription"}.get(
                    self.resource)

    def describe(self) -> str:
        inner = ", ".join([source(a) for a in self.args]
                          + [f"{k}={source(v)}" for k, v in self.kwargs.items()])
        if self.auth is not None:
            inner += f"{', ' if inner else ''}auth={self.auth!r}"
        if self.resource == "sim":
            return f"{self.method}({inner})"
        return f"client.{self.resource}.{self.method}({inner})"


def dig(obj: Any, path: str) -> Any:
    """``obj``'s value at a dotted ``path`` (None when something on the way is missing)."""
    for part in path.split("."):
        if obj is None:
            return None
        if part.isdigit():
            obj = obj[int(part)] if isinstance(obj, list) and len(obj) > int(part) else None
        else:
            obj = getattr(obj, part, None)
    return obj


def resolve(value: Any, fn: Callable[[Any], Any]) -> Any:
    """Copy ``value`` with every marker replaced by ``fn(marker)``."""
    if isinstance(value, dict):
        return {k: resolve(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve(v, fn) for v in value]
    if isinstance(value, (Ref, Token, Version, NamedKey, _Marker)):
        return fn(value)
    return value


def source(value: Any) -> str:
    """Python source for a call argument; markers become the snippet's names."""
    if isinstance(value, Ref):
        return value.label
    if isinstance(value, Token):
        if value.which == "initial":
            return f"first_token[{value.label}]"
        return f"token({value.label})"
    if isinstance(value, Version):
        return f"version({value.label})"
    if isinstance(value, NamedKey):
        return f"key({value.name!r})"
    if value is KEY:
        return "key()"
    if value is LOCATION:
        return "LOCATION"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {source(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(source(v) for v in value) + "]"
    return repr(value)
