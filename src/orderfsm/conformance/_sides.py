"""The two sides of a comparison: the orderfsm engine (oracle) and a server through the SDK.

Both sides execute the same :class:`Call`, keep their own label -> id map, and expose objects
through attribute access (SDK models on the server side, :class:`Obj` around the engine's JSON
on the oracle side), so one set of field expressions reads both and prints into snippets.
"""

from __future__ import annotations

import json
import uuid
import warnings
from urllib.parse import quote
from dataclasses import dataclass
from typing import Any, Mapping

import httpx

from ..engine import Engine
from ..errors import SquareError
from ..rules import violation
from ..urls import url_problem
from ._calls import KEY, LOCATION, Call, NamedKey, Ref, Token, Version, resolve

__all__ = ["Obj", "Outcome", "OracleSide", "ServerSide", "Control", "ServerUnreachable",
           "FIELDS", "KIND_OF", "view", "read_field"]

RO = {"max_retries": 0}
KIND_OF = {"o": "order", "p": "payment", "r": "refund", "w": "subscription", "c": "catalog"}
# Webhook event types Square documents that the runner subscribes to (it sends no others
# except deliberately unknown ones).
KNOWN_EVENT_TYPES = ("order.created", "order.updated", "order.fulfillment.updated",
                     "payment.created", "payment.updated", "refund.created", "refund.updated")
# Commands under an idempotency key, by SDK method: a replay with the same key and body answers
# what the first call answered; another body is IDEMPOTENCY_KEY_REUSED (UpdateOrder answers the
# current order instead and applies nothing).
IDEMPOTENT = {("orders", "create"): "CreateOrder", ("orders", "update"): "UpdateOrder",
              ("orders", "pay"): "PayOrder", ("orders", "clone"): "CloneOrder",
              ("payments", "create"): "CreatePayment", ("refunds", "refund_payment"): "RefundPayment",
              ("webhooks.subscriptions", "create"): "CreateWebhookSubscription",
              ("catalog.object", "upsert"): "UpsertCatalogObject",
              ("catalog", "batch_upsert"): "BatchUpsertCatalogObjects"}
BATCH_MAX = 100  # BatchRetrieveOrders ids


class ServerUnreachable(RuntimeError):
    """The server could not be reached (connection refused, DNS, timeout)."""


class Obj:
    """Attribute access over Square JSON, the way the SDK's models read: missing is None."""

    __slots__ = ("_d",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._d = data

    def __getattr__(self, name: str) -> Any:
        return _wrap(self._d.get(name))

    def __repr__(self) -> str:
        return f"Obj({self._d!r})"


def _wrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Obj(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


# Compared fields: name -> (expression over ``x``, holds an id to map to a label).
# The expressions are the snippet's too, so they use only SDK attribute access.
FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "order": {
        "state": ("x.state", False),
        "version": ("x.version", False),
        "total_money": ("x.total_money.amount if x.total_money else None", False),
        "net_amount_due_money": (
            "x.net_amount_due_money.amount if x.net_amount_due_money else None", False),
        "fulfillments": ("sorted([f.uid, f.state] for f in (x.fulfillments or []))", False),
        "line_items": ("sorted([li.quantity, li.base_price_money.amount if li.base_price_money "
                       "else None] for li in (x.line_items or []))", False),
    },
    "payment": {
        "status": ("x.status", False),
        "amount_money": ("x.amount_money.amount if x.amount_money else None", False),
        "total_money": ("x.total_money.amount if x.total_money else None", False),
        "refunded_money": ("x.refunded_money.amount if x.refunded_money else 0", False),
        "order_id": ("x.order_id", True),
        "refund_ids": ("len(x.refund_ids or [])", False),
    },
    "refund": {
        "status": ("x.status", False),
        "amount_money": ("x.amount_money.amount if x.amount_money else None", False),
        "payment_id": ("x.payment_id", True),
    },
    "catalog": {
        "type": ("x.type", False),
        "is_deleted": ("bool(x.is_deleted)", False),
    },
    "subscription": {
        "event_types": ("sorted(x.event_types or [])", False),
        "enabled": ("x.enabled", False),
        "notification_url": ("x.notification_url", False),
    },
}
PATHS = {"order": ("/v2/orders/", "order"), "payment": ("/v2/payments/", "payment"),
         "refund": ("/v2/refunds/", "refund"),
         "subscription": ("/v2/webhooks/subscriptions/", "subscription"),
         "catalog": ("/v2/catalog/object/", "object")}
_COMPILED = {kind: {name: compile(expr, f"<{kind}.{name}>", "eval")
                    for name, (expr, _) in fields.items()} for kind, fields in FIELDS.items()}


def read_field(kind: str, name: str, obj: Any) -> Any:
    return eval(_COMPILED[kind][name], {"__builtins__": {"sorted": sorted, "len": len, "bool": bool}},
                {"x": obj})


def view(kind: str, obj: Any, labels_by_id: Mapping[str, str]) -> dict[str, Any]:
    """The compared fields of one object; ids become labels (``?`` when unknown)."""
    out: dict[str, Any] = {}
    for name, (_, is_ref) in FIELDS[kind].items():
        value = read_field(kind, name, obj)
        if is_ref and value is not None:
            value = labels_by_id.get(value, "?")
        out[name] = value
    return out


@dataclass(slots=True)
class Outcome:
    """What one side answered: accepted (with the main object) or rejected (with the error)."""

    ok: bool
    obj: Any = None  # the main object (also set for a declined payment)
    status: int | None = None
    category: str | None = None
    code: str | None = None
    field: str | None = None
    detail: str | None = None
    rule_id: str | None = None  # oracle only

    def summary(self) -> dict[str, Any]:
        if self.ok:
            return {"accepted": True}
        out = {"accepted": False, "status": self.status, "category": self.category,
               "code": self.code, "field": self.field, "detail": self.detail}
        if self.rule_id:
            out["rule"] = self.rule_id
        return out


class _Side:
    def __init__(self, location_id: str) -> None:
        self.location_id = location_id
        self.ids: dict[str, str] = {}  # label -> this side's id
        self.labels: dict[str, str] = {}  # this side's id -> label
        self.first_tokens: dict[str, str | None] = {}
        self.key_prefix = uuid.uuid4().hex[:12]

    def register(self, label: str, ident: str) -> None:
        self.ids[label] = ident
        self.labels[ident] = label

    def _resolve(self, marker: Any) -> Any:
        if isinstance(marker, Ref):
            return self.ids[marker.label]
        if isinstance(marker, Token):
            if marker.which == "initial":
                return self.first_tokens.get(marker.label)
            return self.current_token(marker.label)
        if isinstance(marker, Version):
            return self.current_version(marker.label)
        if marker is LOCATION:
            return self.location_id
        if isinstance(marker, NamedKey):
            return f"{self.key_prefix}-{marker.name}"
        if marker is KEY:
            return str(uuid.uuid4())
        raise TypeError(f"unknown marker {marker!r}")

    def current_token(self, label: str) -> str | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def current_version(self, label: str) -> int | None:
        obj = self.read("order", label)
        return None if obj is None else obj.version

    def read(self, kind: str, label: str) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def view(self, kind: str, obj: Any) -> dict[str, Any]:
        return view(kind, obj, self.labels)


class OracleSide(_Side):
    """The orderfsm engine, called in-process with the same arguments the SDK would send."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.main_location_id)
        self.engine = engine
        self._keys: dict[tuple[str, str], tuple[str, Outcome]] = {}
        # The engine keeps no webhook subscriptions: the oracle holds them here.
        self.subscriptions: dict[str, dict[str, Any]] = {}

    def current_token(self, label: str) -> str | None:
        return self.engine.payments[self.ids[label]].get("version_token")

    def execute(self, call: Call) -> Outcome:
        args = resolve(call.args, self._resolve)
        kw = resolve(dict(call.kwargs), self._resolve)
        if call.auth is not None:
            return _rejected(violation("api.unauthorized"), call)
        endpoint = IDEMPOTENT.get((call.resource, call.method))
        ikey = kw.get("idempotency_key")
        if endpoint is None or not ikey:
            return self._run(call, args, kw)
        if args:
            endpoint += ":" + str(args[0])
        fp = json.dumps([args, kw], sort_keys=True, default=str)
        stored = self._keys.get((endpoint, ikey))
        if stored is not None:
            if call.method == "update":
                try:
                    return Outcome(True, Obj(self.engine.get_order(args[0])))
                except SquareError as err:
                    return _rejected(err, call)
            if stored[0] != fp:
                return _rejected(violation("api.idempotency_key_reused"), call)
            return stored[1]
        out = self._run(call, args, kw)
        if out.ok or (out.obj is not None and call.method != "update"):
            self._keys[(endpoint, ikey)] = (fp, out)
        return out

    def _run(self, call: Call, args: list[Any], kw: dict[str, Any]) -> Outcome:
        eng = self.engine
        key = (call.resource, call.method)
        try:
            if key == ("orders", "get"):
                obj = eng.get_order(args[0])
            elif key == ("payments", "get"):
                obj = eng.get_payment(args[0])
            elif key == ("refunds", "get"):
                obj = eng.get_refund(args[0])
            elif key == ("locations", "get"):
                obj = eng.get_location(args[0])
            elif call.resource in ("catalog", "catalog.object"):
                obj = self._catalog(call.method, args, kw)
                if obj is None:
                    return Outcome(True)
            elif call.resource == "webhooks.subscriptions":
                obj = self._subscriptions(call.method, args, kw)
            elif key == ("sim", "finish_refund"):
                obj = {"settle": eng.settle_refund, "reject": eng.reject_refund,
                       "fail": eng.fail_refund}[args[1]](args[0])
            elif key == ("orders", "clone"):
                obj = eng.clone_order(kw["order_id"], kw.get("version"))
            elif key == ("orders", "search"):
                query = kw.get("query") or {}
                sort = (query.get("sort") or {}).get("sort_field") or "CREATED_AT"
                states = ((query.get("filter") or {}).get("state_filter") or {}).get("states")
                eng.search_orders(location_ids=[eng.main_location_id if x == self.location_id
                                                else x for x in kw.get("location_ids") or []],
                                  states=states, sort_field=sort.lower())
                return Outcome(True)
            elif key == ("orders", "batch_get"):
                if len(kw["order_ids"]) > BATCH_MAX:
                    raise violation("api.too_many_ids", maximum=BATCH_MAX, field="order_ids")
                return Outcome(True)
            elif key == ("payments", "list"):
                limit = kw.get("limit")
                if limit is not None and not 1 <= limit <= 100:
                    raise violation("api.invalid_value", field="limit",
                                    reason="`limit` must be between 1 and 100.")
                if kw.get("cursor"):
                    raise violation("api.invalid_cursor", cursor=kw["cursor"])
                return Outcome(True)
            elif key == ("orders", "create"):
                obj = eng.create_order(kw["order"])
            elif key == ("orders", "update"):
                obj = eng.update_order(args[0], kw.get("order") or {}, kw.get("fields_to_clear"))
            elif key == ("orders", "pay"):
                obj = eng.pay_order(args[0], kw.get("payment_ids"), kw.get("order_version"))
            elif key == ("payments", "create"):
                obj = eng.create_payment(kw)
            elif key == ("payments", "complete"):
                obj = eng.complete_payment(args[0], kw.get("version_token"))
            elif key == ("payments", "cancel"):
                obj = eng.cancel_payment(args[0])
            elif key == ("payments", "cancel_by_idempotency_key"):
                eng.cancel_payment_by_idempotency_key(kw["idempotency_key"])
                return Outcome(True)
            elif key == ("refunds", "refund_payment"):
                obj = eng.refund_payment(kw)
            elif key == ("sim", "advance_clock"):
                eng.advance(args[0])
                return Outcome(True)
            else:  # pragma: no cover - a programming error
                raise ValueError(f"the oracle cannot run {call.describe()}")
        except SquareError as err:
            return _rejected(err, call)
        return Outcome(True, Obj(obj))

    def _catalog(self, method: str, args: list[Any], kw: dict[str, Any]) -> Any:
        """The Catalog API on the engine's catalog, as the simulator's routes call it."""
        eng = self.engine
        cat = eng.catalog
        if method == "upsert":
            obj = _strip(kw["object"])
            return eng.catalog_command(lambda: cat.upsert([[obj]], prefix="object",
                                                          partial=False))["objects"][0]
        if method == "get":
            return cat.retrieve(args[0])["object"]
        if method == "delete":
            eng.catalog_command(lambda: cat.delete([args[0]], single=True))
        elif method == "batch_upsert":
            batches = [_strip(b["objects"]) for b in kw["batches"]]
            return eng.catalog_command(lambda: cat.upsert(batches))
        elif method == "search":
            cat.search(object_types=kw.get("object_types"), deleted=False, begin_time=None,
                       query=_strip(kw.get("query") or {}))
        return None

    def _subscriptions(self, method: str, args: list[Any], kw: dict[str, Any]) -> Any:
        """Webhook subscriptions as the catalog's webhook.* rules describe them."""
        if method == "create":
            sub = {k: v for k, v in (kw.get("subscription") or {}).items() if v is not None}
            for name in ("notification_url", "event_types"):
                if not sub.get(name):
                    raise violation("webhook.subscription_field_required", name=name)
            for i, etype in enumerate(sub["event_types"]):
                if etype not in KNOWN_EVENT_TYPES:
                    raise violation("webhook.event_type_unknown", event_type=etype, index=i)
            reason = url_problem(sub["notification_url"])
            if reason is not None:
                raise violation("webhook.notification_url_invalid", reason=reason)
            ident = f"wbhk_oracle_{len(self.subscriptions) + 1}"
            self.subscriptions[ident] = {
                "id": ident, "event_types": list(dict.fromkeys(sub["event_types"])),
                "enabled": sub.get("enabled", True), "notification_url": sub["notification_url"]}
            return self.subscriptions[ident]
        sub = self.subscriptions.get(args[0])
        if sub is None:
            raise violation("webhook.subscription_not_found", id=args[0])
        if method == "test" and kw.get("event_type") not in (None, *sub["event_types"]):
            raise violation("webhook.test_event_type", event_type=kw["event_type"], id=args[0])
        return sub

    def read(self, kind: str, label: str) -> Any:
        ident = self.ids.get(label)
        if ident is None:
            return None
        if kind == "subscription":
            found = self.subscriptions.get(ident)
            return None if found is None else Obj(found)
        if kind == "catalog":
            try:
                return Obj(self.engine.catalog.retrieve(ident)["object"])
            except SquareError:
                return None
        rec = {"order": self.engine.orders, "payment": self.engine.payments,
               "refund": self.engine.refunds}[kind].get(ident)
        if rec is None:
            return None
        if kind == "order":
            return Obj(self.engine.render_order(rec))
        if kind == "payment":
            return Obj(self.engine.render_payment(rec))
        return Obj(self.engine.render_refund(rec))


def _strip(value: Any) -> Any:
    """A request body without its nulls (the SDK sends none; a create treats null as absent)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _rejected(err: SquareError, call: Call) -> Outcome:
    first = err.first
    extra = err.extra.get(call.result_name or "")
    return Outcome(False, Obj(extra) if extra else None, err.status, first.category,
                   first.code, first.field, first.detail, err.rule_id)


class Control:
    """The simulator's control API (``/_sim/*``), when the server has one."""

    def __init__(self, http: httpx.Client, base_url: str, token: str) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.has_reset = False
        self.has_clock = False
        self.refund_settle_seconds: float | None = None

    def _post(self, path: str, body: Any) -> httpx.Response:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.http.post(f"{self.base}{path}", json=body, headers=self.headers)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach {self.base}: {exc}") from exc

    def _get(self, path: str) -> httpx.Response:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.http.get(f"{self.base}{path}", headers=self.headers)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach {self.base}: {exc}") from exc

    def probe_clock(self) -> None:
        """Whether the merchant's clock can be advanced (by 0 seconds, which changes nothing),
        and the server's refund settle delay when it publishes its state."""
        r = self._post("/_sim/clock/advance", {"seconds": 0})
        self.has_clock = r.status_code == 200 and "now" in _json(r)
        if self.has_clock:
            state = _json(self._get("/_sim/state"))
            # Version 2 snapshots keep it in the merchant's records, version 1 in "engine".
            engine = ((state.get("records") or {}).get("meta") or {}).get("engine") \
                or state.get("engine") or {}
            delay = engine.get("refund_settle_delay")
            if isinstance(delay, (int, float)):
                self.refund_settle_seconds = float(delay)

    def reset(self) -> bool:
        r = self._post("/_sim/reset", {})
        return r.status_code == 200 and _json(r).get("reset") is True

    def advance(self, seconds: float) -> httpx.Response:
        return self._post("/_sim/clock/advance", {"seconds": seconds})

    def finish_refund(self, refund_id: str, outcome: str) -> httpx.Response:
        return self._post(f"/_sim/refunds/{quote(refund_id, safe='')}/{outcome}", {})

    def get_object(self, path: str, name: str) -> Any:
        """GET a Square object without the SDK's model layer (reads for comparisons are
        many; parsing them into SDK models would cost more than the calls under test)."""
        r = self._get(path)
        if r.status_code != 200:
            return None
        data = _json(r).get(name)
        return Obj(data) if isinstance(data, dict) else None


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class ServerSide(_Side):
    """A server driven through the official SDK, without retries."""

    def __init__(self, client: Any, control: Control | None, location_id: str) -> None:
        super().__init__(location_id)
        self.client = client
        self.control = control

    def _sdk(self, resource: str, method: str, *args: Any, auth: str | None = None,
             **kwargs: Any) -> Any:
        owner = self.client
        for part in resource.split("."):
            owner = getattr(owner, part)
        fn = getattr(owner, method)
        options: Any = RO if auth is None else {**RO, "additional_headers": {"Authorization": auth}}
        try:
            with warnings.catch_warnings():
                # starlette's TestClient warns about the SDK's per-request timeout argument
                warnings.simplefilter("ignore")
                return fn(*args, request_options=options, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach the server: {exc}") from exc

    def current_token(self, label: str) -> str | None:
        obj = self.read("payment", label)
        return None if obj is None else obj.version_token

    def execute(self, call: Call) -> Outcome:
        from square.core.api_error import ApiError

        args = resolve(call.args, self._resolve)
        kw = resolve(dict(call.kwargs), self._resolve)
        if call.resource == "sim":
            if self.control is None:  # pragma: no cover - rules check has_clock first
                raise RuntimeError("the server has no control API")
            if call.method == "finish_refund":
                r = self.control.finish_refund(args[0], args[1])
            else:
                r = self.control.advance(args[0])
            if r.status_code == 200:
                return Outcome(True)
            return _error_outcome(r.status_code, _json(r), None)
        try:
            res = self._sdk(call.resource, call.method, *args, auth=call.auth, **kw)
        except ApiError as err:
            return _error_outcome(err.status_code or 0, err.body, call.result_name)
        if call.method == "batch_upsert":
            return Outcome(True, res)
        return Outcome(True, getattr(res, call.result_name or "", None))

    def read(self, kind: str, label: str) -> Any:
        ident = self.ids.get(label)
        if ident is None or self.control is None:
            return None
        path, name = PATHS[kind]
        return self.control.get_object(path + quote(ident, safe=""), name)


def _error_outcome(status: int, body: Any, result_name: str | None) -> Outcome:
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    extra = body.get(result_name) if isinstance(body, dict) and result_name else None
    return Outcome(False, Obj(extra) if isinstance(extra, dict) else None, status,
                   first.get("category"), first.get("code"), first.get("field"),
                   first.get("detail") if first else str(body)[:200])
