// orderfsm inspector: reads the merchant's data from /_sim and redraws what changed.
// Plain browser JavaScript: no build step, no libraries, nothing loaded from elsewhere.
"use strict";

(function () {
  const TOKEN_KEY = "orderfsm.inspector.token";
  const POLL_MS = 1000;
  const PAGE = 50;
  const SVG = "http://www.w3.org/2000/svg";

  const state = {
    token: null, offset: 0, filter: "", search: "", selected: null,
    lifecycles: null, seen: {}, timer: null, busy: false,
  };

  const $ = (sel) => document.querySelector(sel);

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c) node.append(c);
    return node;
  }

  function money(m) {
    if (!m || typeof m.amount !== "number") return "–";
    const cur = m.currency || "";
    const major = (m.amount / 100).toFixed(2);
    return cur === "USD" ? `$${major}` : `${major} ${cur}`;
  }

  const badge = (s) => el("span", { class: `badge ${s}`, "data-state": s, text: s });
  const short = (id) => (id && id.length > 14 ? id.slice(0, 10) + "…" : id || "");

  function kv(pairs) {
    const dl = el("dl", { class: "kv" });
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(el("dt", { text: k }), el("dd", {}, v));
    }
    return dl;
  }

  async function api(path, options) {
    const init = Object.assign({ headers: {} }, options || {});
    init.headers.Authorization = `Bearer ${state.token}`;
    if (init.body) init.headers["Content-Type"] = "application/json";
    const res = await fetch(path, init);
    const text = await res.text();
    if (!res.ok) {
      let detail = text;
      try { detail = JSON.parse(text).errors[0].detail; } catch (e) { /* keep the text */ }
      throw new Error(`${path}: ${res.status} ${detail}`);
    }
    return text;
  }

  // Calls ``draw`` only when the JSON behind a panel changed since it was last drawn.
  async function refresh(key, path, draw) {
    const text = await api(path);
    if (state.seen[key] === text) return;
    state.seen[key] = text;
    draw(JSON.parse(text));
  }

  // ------------------------------------------------------------------ diagrams
  const NODE_W = 104, NODE_H = 28, COL = 146, ROW = 46, TOP = 30, LEFT = 22;

  function nodeBox(layout, s) {
    const [col, row] = layout[s];
    return { x: LEFT + col * COL, y: TOP + row * ROW, w: NODE_W, h: NODE_H };
  }

  // ``steps`` is the record's path: [{from, to, trigger, at}], oldest first.
  function diagram(resource, ident, current, steps) {
    const g = state.lifecycles && state.lifecycles[resource];
    if (!g) return el("p", { class: "muted", text: "(lifecycle tables not loaded)" });
    const layout = g.layout;
    let cols = 0, rows = 0;
    for (const [c, r] of Object.values(layout)) { cols = Math.max(cols, c); rows = Math.max(rows, r); }
    const width = LEFT + cols * COL + NODE_W + 12;
    const height = TOP + rows * ROW + NODE_H + 12;
    const root = svg("svg", {
      class: "fsm", viewBox: `0 0 ${width} ${height}`, width: width, height: height,
      role: "img", "aria-label": `${resource} lifecycle, current state ${current}`,
    });
    root.dataset.diagram = resource;
    root.dataset.id = ident;
    const mid = `m-${resource}-${String(ident).replace(/[^A-Za-z0-9_-]/g, "")}`;
    root.append(svg("defs", {},
      svg("marker", { id: `${mid}-a`, viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L8,4 L0,8 z" })),
      svg("marker", { id: `${mid}-t`, class: "taken", viewBox: "0 0 8 8", refX: 7, refY: 4, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L8,4 L0,8 z" }))));

    const taken = new Map();  // "A->B" -> [step numbers]
    const visited = new Set();
    (steps || []).forEach((s, i) => {
      visited.add(s.from); visited.add(s.to);
      if (s.from !== s.to) {
        const k = `${s.from}->${s.to}`;
        if (!taken.has(k)) taken.set(k, []);
        taken.get(k).push(i + 1);
      }
    });

    const labels = new Map();
    for (const e of g.edges) {
      if (e.kind !== "transition") continue;
      const k = `${e.source}->${e.dest}`;
      labels.set(k, (labels.get(k) ? labels.get(k) + " | " : "") + e.label);
    }
    const drawn = new Set();
    const edgeLayer = svg("g", {}), takenLayer = svg("g", {});
    for (const e of g.edges) {
      if (e.kind === "creation") {
        const b = nodeBox(layout, e.dest);
        if (drawn.has(`*->${e.dest}`)) continue;
        drawn.add(`*->${e.dest}`);
        edgeLayer.append(svg("circle", { class: "start", cx: b.x - 15, cy: b.y + b.h / 2, r: 3.5 }),
          svg("path", { class: "edge", d: `M${b.x - 12},${b.y + b.h / 2} L${b.x - 1},${b.y + b.h / 2}`, "marker-end": `url(#${mid}-a)` }));
        continue;
      }
      if (e.kind !== "transition") continue;
      const k = `${e.source}->${e.dest}`;
      if (drawn.has(k)) continue;
      drawn.add(k);
      const a = nodeBox(layout, e.source), b = nodeBox(layout, e.dest);
      let d, lx, ly;
      const span = layout[e.dest][0] - layout[e.source][0];
      const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
      if (span === 1) {
        const cx = (x1 + x2) / 2;
        d = `M${x1},${y1} C${cx},${y1} ${cx},${y2} ${x2 - 1},${y2}`;
        lx = cx; ly = (y1 + y2) / 2 - 4;
      } else if (layout[e.dest][1] > layout[e.source][1]) {
        // Skips columns to a lower row: leave from the bottom, pass under the states between.
        const sx = a.x + a.w / 2 + 10;
        d = `M${sx},${a.y + a.h} C${sx},${y2} ${x2 - 40},${y2} ${x2 - 1},${y2}`;
        lx = (sx + x2) / 2; ly = y2 - 4;
      } else {
        // Skips columns on the same row: arc above so it does not cross the states between.
        const lift = Math.min(a.y, b.y) - 14 - 6 * (span - 1);
        const sx = a.x + a.w / 2, ex = b.x + b.w / 2;
        d = `M${sx},${a.y} C${sx},${lift} ${ex},${lift} ${ex},${b.y - 1}`;
        lx = (sx + ex) / 2; ly = lift + 10;
      }
      const isTaken = taken.has(k);
      const path = svg("path", { class: isTaken ? "edge taken" : "edge", d: d, "marker-end": `url(#${mid}-${isTaken ? "t" : "a"})` },
        svg("title", { text: labels.get(k) || k }));
      path.dataset.edge = k;
      (isTaken ? takenLayer : edgeLayer).append(path);
      if (isTaken) {
        takenLayer.append(svg("text", { class: "step", x: lx, y: ly, "text-anchor": "middle", text: taken.get(k).join(",") }));
      }
    }
    root.append(edgeLayer, takenLayer);
    for (const s of g.states) {
      const b = nodeBox(layout, s);
      const classes = ["node"];
      if (g.terminal.includes(s)) classes.push("terminal");
      if (s === current) classes.push("current");
      else if (visited.has(s)) classes.push("visited");
      const node = svg("g", { class: classes.join(" ") },
        svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 7 }),
        svg("text", { x: b.x + b.w / 2, y: b.y + b.h / 2, text: s }));
      node.dataset.state = s;
      root.append(node);
    }
    return root;
  }

  function pathText(steps) {
    if (!steps || !steps.length) return "no transition yet";
    return steps.map((s, i) => `${i + 1}. ${s.trigger}: ${s.from} → ${s.to} (${s.at})`).join("\n");
  }

  function recordCard(resource, ident, current, steps, fields) {
    const card = el("div", { class: "record", "data-record": resource, "data-id": ident },
      el("h4", {}, resource, badge(current), el("code", { text: ident })),
      el("div", { class: "body" }, diagram(resource, ident, current, steps), fields ? kv(fields) : null),
      el("details", {}, el("summary", { text: `path (${(steps || []).length} steps)` }), el("pre", { text: pathText(steps) })));
    card.dataset.state = current;
    return card;
  }

  // ------------------------------------------------------------------ panels
  function drawOverview(o) {
    $("#clock").textContent = o.now;
    $("#merchant").textContent = `merchant ${o.merchant_id} · ${o.orders} orders · ${o.payments} payments · ${o.refunds} refunds`;
  }

  function drawOrders(data) {
    $("#orders-count").textContent = `${data.total.toLocaleString("en-US")} total`;
    const body = $("#orders tbody");
    body.replaceChildren();
    for (const o of data.orders) {
      const f = o.fulfillments.map((x) => `${x.type} ${x.state}`).join(", ");
      const tr = el("tr", { "data-order-id": o.id, class: o.id === state.selected ? "selected" : null,
                            onclick: () => select(o.id) },
        el("td", {}, el("code", { title: o.id, text: short(o.id) }), o.is_return ? el("span", { class: "muted", text: " return" }) : null),
        el("td", {}, badge(o.state)),
        el("td", { class: "n", text: o.version }),
        el("td", { class: "n", text: money(o.total_money) }),
        el("td", { class: "n", text: money(o.net_amount_due_money) }),
        el("td", { class: "muted", text: f }));
      body.append(tr);
    }
    const from = data.total ? data.offset + 1 : 0;
    const to = Math.min(data.offset + data.orders.length, data.total);
    $("#page-info").textContent = `${from.toLocaleString("en-US")}–${to.toLocaleString("en-US")} of ${data.total.toLocaleString("en-US")}`;
    $("#prev-page").disabled = data.offset === 0;
    $("#next-page").disabled = to >= data.total;
    if (!state.selected && data.orders.length) select(data.orders[0].id);
  }

  function lineItems(order) {
    const items = order.line_items || [];
    if (!items.length) return null;
    return el("table", { class: "items" },
      el("thead", {}, el("tr", {}, el("th", { text: "line item" }), el("th", { class: "n", text: "qty" }),
        el("th", { class: "n", text: "price" }), el("th", { class: "n", text: "total" }))),
      el("tbody", {}, items.map((li) => el("tr", {},
        el("td", { text: li.name || li.catalog_object_id || li.uid }), el("td", { class: "n", text: li.quantity }),
        el("td", { class: "n", text: money(li.base_price_money) }), el("td", { class: "n", text: money(li.total_money) })))));
  }

  function drawDetail(d) {
    const o = d.order;
    $("#detail-id").textContent = o.id;
    const box = $("#detail");
    box.replaceChildren();
    box.append(el("div", { class: "summary", "data-order-id": o.id },
      kv([["state", el("span", { id: "order-state" }, badge(o.state))], ["version", String(o.version)],
          ["total", money(o.total_money)], ["amount due", money(o.net_amount_due_money)],
          ["tax", money(o.total_tax_money)], ["discounts", money(o.total_discount_money)],
          ["created", o.created_at], ["updated", o.updated_at], ["closed", o.closed_at],
          ["reference", o.reference_id],
          ["return of", d.source_order_ids.length ? d.source_order_ids.join(", ") : null]])));
    box.append(recordCard("order", o.id, o.state, d.paths.order[o.id]));
    const items = lineItems(o);
    if (items) box.append(el("h3", { text: "Line items" }), items);

    const fulfillments = o.fulfillments || [];
    if (fulfillments.length) {
      box.append(el("h3", { text: "Fulfillments" }));
      box.append(el("div", { class: "records" }, fulfillments.map((f) => recordCard("fulfillment", f.uid, f.state,
        d.paths.fulfillment[f.uid], [["type", f.type]]))));
    }
    if ((o.tenders || []).length) {
      box.append(el("h3", { text: "Tenders" }), el("table", {},
        el("tbody", {}, o.tenders.map((t) => el("tr", {}, el("td", {}, el("code", { text: t.id })), el("td", { text: t.type }),
          el("td", { class: "n", text: money(t.amount_money) }),
          el("td", { text: (t.card_details && t.card_details.status) || "" }))))));
    }
    box.append(el("h3", { text: `Payments (${d.payments.length})` }));
    box.append(d.payments.length ? el("div", { class: "records" }, d.payments.map((p) => recordCard("payment", p.id, p.status,
      d.paths.payment[p.id], [["amount", money(p.amount_money)], ["refunded", p.refunded_money ? money(p.refunded_money) : null],
        ["source", p.source_type], ["card", p.card_details ? p.card_details.status : null], ["delayed until", p.delayed_until]]))) :
      el("p", { class: "muted", text: "none" }));
    box.append(el("h3", { text: `Refunds (${d.refunds.length})` }));
    box.append(d.refunds.length ? el("div", { class: "records" }, d.refunds.map((r) => recordCard("refund", r.id, r.status,
      d.paths.refund[r.id], [["amount", money(r.amount_money)], ["payment", r.payment_id], ["return order", r.order_id], ["reason", r.reason]]))) :
      el("p", { class: "muted", text: "none" }));
    if (d.return_orders.length) {
      box.append(el("h3", { text: `Return orders (${d.return_orders.length})` }));
      box.append(el("table", { id: "return-orders" }, el("tbody", {}, d.return_orders.map((r) => el("tr", { "data-order-id": r.id },
        el("td", {}, el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); select(r.id); }, text: r.id })),
        el("td", {}, badge(r.state)),
        el("td", { class: "n", text: money((r.return_amounts || {}).total_money) }),
        el("td", { class: "muted", text: (r.refunds || []).map((x) => `refund ${short(x.id)} ${x.status}`).join(", ") }))))));
    }
  }

  function drawRejections(data) {
    $("#rejections-count").textContent = `${data.total} rejected request${data.total === 1 ? "" : "s"}`;
    const box = $("#rejections");
    box.replaceChildren();
    if (!data.rejections.length) { box.append(el("p", { class: "muted", text: "No request was rejected." })); return; }
    for (const r of data.rejections) {
      const e = r.errors[0] || {};
      const rule = r.rule;
      const sources = rule ? el("ul", {}, rule.sources.map((s) => el("li", {},
        el("span", { class: "muted", text: `${s.key} ` }),
        s.url ? el("a", { href: s.url, target: "_blank", rel: "noopener", text: s.url }) : null,
        s.remark ? ` ${s.remark}` : null))) : null;
      box.append(el("div", { class: "rej", "data-rule": r.rule_id || "" },
        el("div", { class: "head" },
          el("span", { class: "rule", text: r.rule_id || "(no catalog rule)" }),
          el("code", { text: `${r.method} ${r.path}` }),
          el("span", { text: `${r.status} ${e.category || ""}/${e.code || ""}${e.field ? ` (${e.field})` : ""}` }),
          el("time", { class: "muted", text: r.at })),
        el("p", { text: e.detail || "" }),
        rule ? el("p", {}, el("strong", { text: "Rule: " }), rule.statement, el("span", { class: "muted", text: ` (${rule.confidence})` })) : null,
        rule && rule.variant ? el("p", { class: "muted", text: `variant ${rule.variant.name}=${rule.variant.value}: ${rule.variant.meaning}` }) : null,
        sources,
        el("details", {}, el("summary", { text: "request" }), el("pre", { text: JSON.stringify(r.request, null, 2) }))));
    }
  }

  function drawOutbox(data) {
    const box = $("#outbox");
    box.replaceChildren();
    if (!data.enabled) { $("#outbox-summary").textContent = "webhooks are off"; return; }
    const s = data.summary;
    $("#outbox-summary").textContent = `${s.events} events · ${data.subscriptions.length} subscriptions · ` +
      Object.entries(s.deliveries).map(([k, v]) => `${v} ${k}`).join(" · ");
    if (!data.events.length) { box.append(el("p", { class: "muted", text: "No event yet." })); return; }
    for (const ev of data.events) {
      const deliveries = ev.deliveries.length ? ev.deliveries.map((d) => el("div", { class: "delivery" },
        el("span", { class: "muted", text: `→ ${d.notification_url} ` }), badge(d.status.toUpperCase()),
        d.next_attempt_at ? el("span", { class: "muted", text: ` next ${d.next_attempt_at}` }) : null,
        el("div", {}, d.attempts.map((a) => el("span", { class: `attempt ${a.status_code >= 200 && a.status_code < 300 ? "ok" : "bad"}`,
          text: ` #${a.attempt} ${a.at} ${a.status_code || ""}${a.error ? " " + a.error : ""}${a.duplicate ? " (duplicate)" : ""};` }))))) :
        [el("span", { class: "muted", text: "no subscriber" })];
      box.append(el("div", { class: "event", "data-event-type": ev.type },
        el("code", { text: ev.created_at }), " ", el("strong", { text: ev.type }), " ",
        el("code", { class: "muted", text: ev.object_id }), el("div", {}, deliveries)));
    }
  }

  // ------------------------------------------------------------------ flow
  function ordersPath() {
    const q = new URLSearchParams({ offset: state.offset, limit: PAGE });
    if (state.filter) q.set("state", state.filter);
    if (state.search) q.set("q", state.search);
    return `/_sim/orders?${q}`;
  }

  async function tick() {
    if (!state.token || state.busy) return;
    state.busy = true;
    try {
      if (!state.lifecycles) {
        state.lifecycles = JSON.parse(await api("/_sim/lifecycles")).lifecycles;
      }
      await refresh("overview", "/_sim/overview", drawOverview);
      await refresh("orders", ordersPath(), drawOrders);
      if (state.selected) await refresh("detail", `/_sim/orders/${encodeURIComponent(state.selected)}`, drawDetail);
      await refresh("rejections", "/_sim/rejections?limit=50", drawRejections);
      await refresh("outbox", "/_sim/outbox?limit=50", drawOutbox);
      $("#error").hidden = true;
      $("#live").classList.remove("stale");
      document.body.dataset.ready = "1";
    } catch (err) {
      $("#error").textContent = String(err.message || err);
      $("#error").hidden = false;
      $("#live").classList.add("stale");
    } finally {
      state.busy = false;
    }
  }

  function select(id) {
    state.selected = id;
    delete state.seen.detail;
    for (const tr of document.querySelectorAll("#orders tbody tr")) {
      tr.classList.toggle("selected", tr.dataset.orderId === id);
    }
    tick();
  }

  function start(token) {
    state.token = token;
    state.seen = {};
    state.selected = null;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#token-input").value = token;
    $("#no-token").hidden = true;
    $("#app").hidden = false;
    if (state.timer) clearInterval(state.timer);
    state.timer = setInterval(tick, POLL_MS);
    tick();
  }

  function init() {
    const params = new URLSearchParams(location.search);
    const token = params.get("token") || sessionStorage.getItem(TOKEN_KEY);
    $("#token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("#token-input").value.trim();
      if (t) start(t);
    });
    for (const b of document.querySelectorAll("[data-advance]")) {
      b.addEventListener("click", async () => {
        if (!state.token) return;
        try {
          await api("/_sim/clock/advance", { method: "POST", body: JSON.stringify({ seconds: Number(b.dataset.advance) }) });
        } catch (err) {
          $("#error").textContent = String(err.message || err); $("#error").hidden = false;
        }
        tick();
      });
    }
    $("#prev-page").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); tick(); });
    $("#next-page").addEventListener("click", () => { state.offset += PAGE; tick(); });
    $("#state-filter").addEventListener("change", (ev) => { state.filter = ev.target.value; state.offset = 0; tick(); });
    let debounce = null;
    $("#order-search").addEventListener("input", (ev) => {
      clearTimeout(debounce);
      debounce = setTimeout(() => { state.search = ev.target.value.trim(); state.offset = 0; tick(); }, 250);
    });
    if (token) start(token); else $("#no-token").hidden = false;
  }

  init();
})();
