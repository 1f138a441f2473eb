"""The inspector: a live page at ``/_sim/ui`` and the read-only JSON it reads.

The page (``simulator/ui/``: one HTML file, one script, one stylesheet; no build step, nothing
fetched from elsewhere) is public; every JSON endpoint is scoped to the caller's token like the
rest of ``/_sim``. None of them changes anything: they do not even fire timers that are due.

JSON endpoints (all GET):

``/_sim/overview``            clock, counts, webhook delivery summary
``/_sim/orders``              orders, newest first, paged (``offset``, ``limit``, ``state``, ``q``)
``/_sim/orders/{id}``         one order with its payments, refunds, return orders, and the path
                              each record took through its lifecycle
``/_sim/lifecycles``          the lifecycle tables as drawable graphs (the ``orderfsm diagram`` edges)
``/_sim/rejections``          the rejection log, newest first, with each rule's explanation
``/_sim/outbox``              the newest webhook events with their delivery attempts
``/_sim/coverage``            this merchant's rule coverage (see :mod:`orderfsm.coverage`)
"""

from __future__ import annotations

import json
from collections import deque
from importlib import resources
from itertools import islice
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from orderfsm import diagrams
from orderfsm.clock import rfc3339
from orderfsm.errors import ErrorDetail, SquareError
from orderfsm.lifecycles import LIFECYCLES, Lifecycle
from orderfsm.reference import source_parts
from orderfsm.rules import CATALOG

from ..http import json_response, merchant_of

__all__ = ["router", "record_rejection", "REJECTION_LOG_SIZE"]

router = APIRouter(prefix="/_sim")
REJECTION_LOG_SIZE = 1000
MAX_PAGE = 200
MAX_LOGGED_BODY = 8192
_ASSETS = {
    "ui.js": "text/javascript; charset=utf-8",
    "ui.css": "text/css; charset=utf-8",
}


def _reader(request: Request) -> Any:
    """The caller's merchant, for a read the page repeats every second: such requests are left
    out of the request log (a failed one is still logged)."""
    request.scope["orderfsm.quiet"] = True
    return merchant_of(request)


def _bad(field: str, detail: str) -> SquareError:
    return SquareError(400, [ErrorDetail("INVALID_REQUEST_ERROR", "INVALID_VALUE", detail, field)])


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, f"`{name}` must be an integer.") from None
    if not low <= value <= high:
        raise _bad(name, f"`{name}` must be between {low} and {high}.")
    return value


# ================================================================ the rejection log
def _token(scope: dict) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                return rest.strip()
            return None
    return None


def record_rejection(request: Request, err: SquareError) -> None:
    """Log one rejected request for its merchant and count the rule it triggered.

    Called by the app's error handler. Requests without a known merchant (no token, or a token
    never seen) and the inspector's own reads are not logged."""
    scope = request.scope
    token = _token(scope)
    store = getattr(request.app.state, "store", None)
    if token is None or store is None:
        return
    merchant = store.merchants.get(token)
    if merchant is None:
        return
    observer = getattr(merchant.engine, "observer", None)
    if observer is not None:
        observer.rejected(err.rule_id)
    if scope.get("method") == "GET" and scope.get("path", "").startswith("/_sim"):
        return
    log = merchant.extra.get("rejections")
    if log is None:
        log = merchant.extra["rejections"] = deque(maxlen=REJECTION_LOG_SIZE)
    seq = merchant.extra.get("rejection_seq", 0) + 1
    merchant.extra["rejection_seq"] = seq
    raw = scope.get("orderfsm.body", b"")
    body: Any = None
    if raw:
        text = raw[:MAX_LOGGED_BODY].decode("utf-8", "replace")
        try:
            body = json.loads(raw) if len(raw) <= MAX_LOGGED_BODY else text + " …"
        except ValueError:
            body = text
    query = scope.get("query_string", b"").decode("latin-1")
    log.append({
        "seq": seq,
        "at": rfc3339(merchant.engine.now()),
        "method": scope.get("method"),
        "path": scope.get("path") + (f"?{query}" if query else ""),
        "status": err.status,
        "rule_id": err.rule_id,
        "errors": [e.to_json() for e in err.errors],
        "request": body,
    })


def _rule_json(rule_id: str | None, variants: Any) -> dict[str, Any] | None:
    rule = CATALOG.get(rule_id) if rule_id else None
    if rule is None:
        return None
    sources = []
    for key in rule.sources:
        url, remark = source_parts(key)
        sources.append({"key": key, "url": url, "remark": remark})
    out: dict[str, Any] = {"id": rule.id, "statement": rule.statement,
                           "confidence": str(rule.confidence), "sources": sources}
    if rule.variant is not None:
        value = variants.get(rule.variant.name, rule.variant.default)
        out["variant"] = {"name": rule.variant.name, "value": value,
                          "meaning": rule.variant.values.get(value, "")}
    return out


# ================================================================ the page
def _asset(name: str) -> bytes:
    return resources.files("simulator").joinpath("ui", name).read_bytes()


@router.get("/ui")
async def ui_page(request: Request) -> Response:
    request.scope["orderfsm.quiet"] = True
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8",
                    headers={"cache-control": "no-cache"})


@router.get("/ui/{name}")
async def ui_asset(name: str, request: Request) -> Response:
    request.scope["orderfsm.quiet"] = True
    media = _ASSETS.get(name)
    if media is None:
        raise SquareError(404, [ErrorDetail("INVALID_REQUEST_ERROR", "NOT_FOUND",
                                            f"No inspector asset `{name}`.")])
    return Response(_asset(name), media_type=media, headers={"cache-control": "no-cache"})


# ================================================================ JSON
@router.get("/overview")
async def overview(request: Request):
    m = _reader(request)
    eng = m.engine
    out: dict[str, Any] = {
        "now": rfc3339(eng.now()),
        "merchant_id": eng.merchant_id,
        "location_id": eng.main_location_id,
        "orders": len(eng.orders),
        "payments": len(eng.payments),
        "refunds": len(eng.refunds),
        "rejections": m.extra.get("rejection_seq", 0),
        "variants": eng.variants.non_default() if hasattr(eng.variants, "non_default") else {},
    }
    ob = m.extra.get("webhooks")
    if ob is not None:
        out["webhooks"] = ob.summary()
    return json_response(out)


def _money(value: Any) -> Any:
    return value if isinstance(value, dict) else None


def _order_row(eng: Any, rec: dict) -> dict[str, Any]:
    rendered = eng.render_order(rec)
    return {
        "id": rec["id"],
        "state": rec["state"],
        "version": rec.get("version"),
        "created_at": rec.get("created_at"),
        "updated_at": rec.get("updated_at"),
        "reference_id": rec.get("reference_id"),
        "is_return": bool(rec.get("returns")),
        "total_money": _money(rendered.get("total_money")),
        "net_amount_due_money": _money(rendered.get("net_amount_due_money")),
        "fulfillments": [{"uid": f.get("uid"), "type": f.get("type"), "state": f.get("state")}
                         for f in rec.get("fulfillments") or [] if isinstance(f, dict)],
        "payments": len(rec.get("_payment_ids", ())),
    }


@router.get("/orders")
async def list_orders(request: Request):
    """Orders newest first. ``state`` filters by state, ``q`` by id or reference id (a
    substring); ``offset``/``limit`` page (limit at most 200)."""
    m = _reader(request)
    eng = m.engine
    offset = _int_param(request, "offset", 0, 0, 10**9)
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    state = request.query_params.get("state") or None
    needle = (request.query_params.get("q") or "").strip() or None
    records = reversed(eng.orders.values())
    if state is None and needle is None:
        total = len(eng.orders)
        page = list(islice(records, offset, offset + limit))
    else:
        total = 0
        page = []
        for rec in records:
            if state is not None and rec["state"] != state:
                continue
            if needle is not None and needle not in rec["id"] \
                    and needle not in str(rec.get("reference_id") or ""):
                continue
            if offset <= total < offset + limit:
                page.append(rec)
            total += 1
    return json_response({"total": total, "offset": offset, "limit": limit,
                          "orders": [_order_row(eng, rec) for rec in page]})


def _path(observer: Any, resource: str, ident: str) -> list[dict[str, str]]:
    if observer is None:
        return []
    return observer.path(resource, ident)


@router.get("/orders/{order_id}")
async def order_detail(order_id: str, request: Request):
    m = _reader(request)
    eng = m.engine
    rec = eng.orders.get(order_id)
    if rec is None:
        raise SquareError(404, [ErrorDetail("INVALID_REQUEST_ERROR", "NOT_FOUND",
                                            f"Order `{order_id}` not found.", "order_id")])
    observer = eng.observer
    pids = list(rec.get("_payment_ids", ()))
    pids += [pid for pid, p in eng.payments.items() if p.get("order_id") == order_id
             and pid not in pids]
    payments = [eng.payments[pid] for pid in pids if pid in eng.payments]
    refunds = [eng.refunds[rid] for p in payments for rid in p.get("refund_ids", ())
               if rid in eng.refunds]
    return_ids = [r["order_id"] for r in refunds if r.get("order_id") in eng.orders]
    sources = [ret.get("source_order_id") for ret in rec.get("returns") or []]
    paths: dict[str, dict[str, list]] = {
        "order": {order_id: _path(observer, "order", order_id)},
        "payment": {p["id"]: _path(observer, "payment", p["id"]) for p in payments},
        "refund": {r["id"]: _path(observer, "refund", r["id"]) for r in refunds},
        "fulfillment": {f["uid"]: _path(observer, "fulfillment", f["uid"])
                        for f in rec.get("fulfillments") or []
                        if isinstance(f, dict) and f.get("uid")},
    }
    return json_response({
        "order": eng.render_order(rec),
        "payments": [eng.render_payment(p) for p in payments],
        "refunds": [eng.render_refund(r) for r in refunds],
        "return_orders": [eng.render_order(eng.orders[oid]) for oid in return_ids],
        "source_order_ids": [s for s in sources if s],
        "paths": paths,
    })


def _layout(lc: Lifecycle) -> dict[str, list[int]]:
    """Column = longest chain of transitions leading to the state; row = order in its column."""
    preds: dict[str, set[str]] = {s: set() for s in lc.states}
    for t in lc.transitions:
        if t.dest is None:
            continue
        for src in t.source:
            if src != t.dest:
                preds[t.dest].add(src)
    depth: dict[str, int] = {}

    def visit(state: str, seen: frozenset[str]) -> int:
        if state in depth:
            return depth[state]
        best = 0
        for p in preds[state]:
            if p not in seen:
                best = max(best, visit(p, seen | {state}) + 1)
        depth[state] = best
        return best

    rows: dict[int, int] = {}
    out: dict[str, list[int]] = {}
    for state in lc.states:
        col = visit(state, frozenset())
        out[state] = [col, rows.get(col, 0)]
        rows[col] = rows.get(col, 0) + 1
    return out


def lifecycle_graphs() -> dict[str, Any]:
    graphs = {}
    for name, lc in LIFECYCLES.items():
        edges = []
        for e in diagrams.edges(lc, include_rejections=True):
            edges.append({"source": e.source, "dest": e.dest, "label": e.label,
                          "kind": e.kind, "note": e.note})
        graphs[name] = {"states": list(lc.states), "terminal": sorted(lc.terminal),
                        "state_field": lc.state_field, "edges": edges, "layout": _layout(lc)}
    return graphs


@router.get("/lifecycles")
async def lifecycles(request: Request):
    _reader(request)
    return json_response({"lifecycles": lifecycle_graphs()})


@router.get("/rejections")
async def rejections(request: Request):
    """The merchant's rejected requests, newest first (the last 1000 are kept)."""
    m = _reader(request)
    offset = _int_param(request, "offset", 0, 0, REJECTION_LOG_SIZE)
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    log = m.extra.get("rejections") or ()
    page = list(islice(reversed(log), offset, offset + limit))
    variants = m.engine.variants
    out = [dict(entry, rule=_rule_json(entry["rule_id"], variants)) for entry in page]
    return json_response({"total": m.extra.get("rejection_seq", 0), "kept": len(log),
                          "offset": offset, "limit": limit, "rejections": out})


@router.get("/outbox")
async def outbox(request: Request):
    """The newest webhook events (``limit``, default 50) with their deliveries and attempts."""
    m = _reader(request)
    limit = _int_param(request, "limit", 50, 1, MAX_PAGE)
    ob = m.extra.get("webhooks")
    if ob is None:
        return json_response({"enabled": False, "events": [], "subscriptions": []})
    ob.drain()
    with ob.lock:
        events = [e.to_json() for e in islice(reversed(ob.events), 0, limit)]
        subs = [{"id": s.id, "name": getattr(s, "name", None), "enabled": s.enabled,
                 "notification_url": getattr(s, "notification_url", None)}
                for s in ob.subscriptions.values()]
    return json_response({"enabled": True, "summary": ob.summary(), "subscriptions": subs,
                          "events": events})


@router.get("/coverage")
async def coverage(request: Request):
    """Rule coverage of this merchant since it was first used (a reset keeps the counts)."""
    m = _reader(request)
    store = request.app.state.store
    cov = store.coverage_for(m.token)
    return json_response(cov.to_json())
