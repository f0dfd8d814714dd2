// cxstream console: vanilla JavaScript, no build step. Builds the DOM with
// textContent only (never innerHTML with data), so chat excerpts cannot
// inject markup.
"use strict";

const $ = (s) => document.querySelector(s);
const state = { token: sessionStorage.getItem("cx-token") || "", me: null, items: [], mine: null, customerOf: "" };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

// reasonTexts: alert.v2 reasons are {code, params, text}; alert.v1 ones
// (older queue items) plain strings.
function reasonTexts(alert) {
  return ((alert && alert.reasons) || []).map((r) => (typeof r === "string" ? r : r.text || r.code || ""));
}

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { const err = new Error(data.error || r.statusText); err.status = r.status; err.code = data.code; throw err; }
  return data;
}

function dur(sec) {
  sec = Math.max(0, Math.round(sec));
  const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
  if (d) return d + "d" + (h ? h + "h" : "");
  if (h) return h + "h" + (m ? m + "m" : "");
  if (m) return m + "m" + (s ? s + "s" : "");
  return s + "s";
}
const secsUntil = (iso) => (Date.parse(iso) - Date.now()) / 1000;
const clock = (iso) => new Date(iso).toLocaleString();

function status(id, text, isError) {
  const s = $(id);
  s.textContent = text;
  s.className = isError ? "error" : "";
}

// ---- queue ----
function slaText(it) {
  if (it.sla_breached) return "BREACHED";
  if (it.sla_met) return "met";
  if (!it.sla_deadline) return "-";
  const left = secsUntil(it.sla_deadline);
  return left > 0 ? "in " + dur(left) : "due";
}

function renderQueue() {
  const body = $("#queue tbody");
  body.replaceChildren();
  for (const it of state.items) {
    const mine = it.claim && state.me && it.claim.agent === state.me.name;
    const row = el("tr", { class: (mine ? "mine " : "") + (it.sla_breached ? "breached" : ""), "data-conversation": it.conversation_id },
      el("td", {}, it.claim ? "" : el("button", { type: "button", class: "claim", "aria-label": "Claim " + it.conversation_id, onclick: () => claim(it.conversation_id) }, "Claim")),
      el("td", {}, it.conversation_id),
      el("td", {}, it.user_id),
      el("td", {}, el("span", { class: "prio " + it.priority }, it.priority)),
      el("td", {}, dur(it.waiting_seconds)),
      el("td", {}, slaText(it)),
      el("td", { class: "claimant" }, it.claim ? it.claim.agent : "-"),
      el("td", {}, it.claim ? dur(secsUntil(it.claim.lease_expires_at)) : "-"),
      el("td", { class: "why", title: reasonTexts(it.alert).join("; ") }, reasonTexts(it.alert)[0] || ""),
      el("td", { class: "excerpt" }, it.alert.excerpt || ""));
    body.append(row);
  }
}

async function refreshQueue() {
  if (!state.me) return;
  try {
    const q = await api("GET", "/v1/queue?limit=100");
    state.items = q.items;
    $("#queue-counts").textContent = "(" + q.waiting + " waiting, " + q.claimed + " claimed" + (q.oldest_waiting_seconds ? ", oldest " + dur(q.oldest_waiting_seconds) : "") + ")";
    const mine = q.items.find((it) => it.claim && it.claim.agent === state.me.name);
    if (state.mine && !mine) status("#queue-status", "Your lease on " + state.mine.conversation_id + " ended; it went back to the queue.", true);
    state.mine = mine || null;
    renderQueue();
    renderWork();
  } catch (e) {
    status("#queue-status", "Queue: " + e.message, true);
  }
}

async function claim(conversation) {
  const lease = Number($("#lease").value);
  try {
    const body = { lease_seconds: lease };
    if (conversation) body.conversation_id = conversation;
    const it = await api("POST", "/v1/queue/claim", body);
    state.mine = it;
    status("#queue-status", "Claimed " + it.conversation_id + ".");
  } catch (e) {
    status("#queue-status", e.code === "queue_empty" ? "Nothing is waiting." : "Claim: " + e.message, e.code !== "queue_empty");
  }
  await refreshQueue();
  const resolveButton = $("#resolve");
  if (state.mine && !$("#work-actions").hidden) resolveButton.focus();
}

async function act(kind) {
  if (!state.mine) return;
  const conv = state.mine.conversation_id;
  try {
    if (kind === "resolve") await api("POST", "/v1/queue/" + encodeURIComponent(conv) + "/resolve", { outcome: $("#outcome").value });
    if (kind === "release") await api("POST", "/v1/queue/" + encodeURIComponent(conv) + "/release", {});
    if (kind === "extend") await api("POST", "/v1/queue/" + encodeURIComponent(conv) + "/extend", { lease_seconds: Number($("#lease").value) });
    status("#queue-status", { resolve: "Resolved ", release: "Released ", extend: "Extended " }[kind] + conv + ".");
    if (kind !== "extend") { state.mine = null; state.customerOf = ""; }
  } catch (e) {
    status("#queue-status", kind + ": " + e.message, true);
  }
  await refreshQueue();
}

// ---- the claimed conversation and its customer ----
function renderWork() {
  const work = $("#work"), actions = $("#work-actions");
  const it = state.mine;
  if (!it) {
    work.className = "empty";
    work.replaceChildren("Nothing claimed. Claim the next conversation with ", el("kbd", {}, "n"), ".");
    actions.hidden = true;
    state.customerOf = "";
    if ($("#customer").className !== "empty") { $("#customer").className = "empty"; $("#customer").replaceChildren("The customer of the conversation you hold shows here."); }
    return;
  }
  work.className = "";
  work.replaceChildren(el("dl", {},
    el("dt", {}, "Conversation"), el("dd", { id: "work-conversation" }, it.conversation_id),
    el("dt", {}, "Priority"), el("dd", {}, el("span", { class: "prio " + it.priority }, it.priority)),
    el("dt", {}, "Waited"), el("dd", {}, dur(it.waiting_seconds)),
    el("dt", {}, "Lease ends"), el("dd", {}, "in " + dur(secsUntil(it.claim.lease_expires_at))),
    el("dt", {}, "Why"), el("dd", {}, reasonTexts(it.alert).join("; ")),
    el("dt", {}, "Latest message"), el("dd", { class: "excerpt" }, it.alert.excerpt || "")));
  actions.hidden = false;
  if (state.customerOf !== it.user_id) loadCustomer(it.user_id);
}

async function loadCustomer(user) {
  state.customerOf = user;
  const box = $("#customer");
  try {
    const v = await api("GET", "/v1/users/" + encodeURIComponent(user) + "?stored=true");
    if (state.customerOf !== user) return;
    box.className = "";
    const f = v.funnels.map((x) => x.funnel + ": " + (x.step >= 0 ? "step " + (x.step + 1) + "/" + x.steps + " " + x.step_name + (x.since ? " since " + clock(x.since) : "") : "not in the funnel") + ", " + x.conversions + " conversions");
    const convs = v.sentiment.conversations.map((c) => el("li", {}, c.conversation_id + ": " + c.rolling.toFixed(2) + " over " + c.messages + " messages (" + c.negatives + " negative)"));
    box.replaceChildren(el("dl", {},
      el("dt", {}, "User"), el("dd", { id: "customer-user" }, v.user_id),
      el("dt", {}, "Lifecycle"), el("dd", {}, v.activity.lifecycle || "unknown"),
      el("dt", {}, "Funnels"), el("dd", {}, f.join("; ")),
      el("dt", {}, "Purchases"), el("dd", {}, v.purchases.count + ", spend " + v.purchases.spend.toFixed(2) + " " + v.purchases.currency),
      el("dt", {}, "Churn risk"), el("dd", {}, v.churn.score.toFixed(2) + " (threshold " + v.churn.threshold.toFixed(2) + "): " + v.churn.reasons.join("; ")),
      el("dt", {}, "Sentiment"), el("dd", {}, v.sentiment.rolling.toFixed(2) + " over " + v.sentiment.messages + " messages", el("ul", {}, ...convs)),
      el("dt", {}, "Negative messages"), el("dd", {}, v.sentiment.negative_messages.length + " recent" + (v.sentiment.negative_messages.length ? ", latest " + clock(v.sentiment.negative_messages[0]) : "")),
      el("dt", {}, "In the queue"), el("dd", {}, v.queue.map((q) => q.conversation_id + " " + q.priority + (q.claimed_by ? " claimed by " + q.claimed_by : " position " + q.position)).join("; "))));
  } catch (e) {
    box.className = "error";
    box.textContent = "Customer: " + e.message;
  }
}

// ---- live alerts (Server-Sent Events read with fetch, so the token goes in a header) ----
function addAlert(a) {
  const list = $("#alerts");
  const li = el("li", { class: "new", "data-alert-id": a.alert_id, "data-type": a.type },
    new Date(a.detected_at || Date.now()).toLocaleTimeString() + " ",
    el("span", { class: "prio " + a.priority }, a.priority), " " + a.type + " " + a.user_id + (a.conversation_id ? " / " + a.conversation_id : ""),
    el("div", {}, reasonTexts(a).join("; ")),
    a.excerpt ? el("div", { class: "excerpt" }, a.excerpt) : null);
  list.prepend(li);
  setTimeout(() => li.classList.remove("new"), 3000);
  while (list.children.length > 100) list.lastChild.remove();
}

async function streamAlerts() {
  for (;;) {
    if (!state.me) { await sleep(1000); continue; }
    try {
      const r = await fetch("/v1/alerts/stream", { headers: { Authorization: "Bearer " + state.token } });
      if (!r.ok) {
        const data = await r.json().catch(() => ({}));
        status("#alerts-status", "(" + (data.error || r.statusText) + ")", true);
        await sleep(r.status === 403 ? 60000 : 5000);
        continue;
      }
      status("#alerts-status", "(live)");
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) { try { addAlert(JSON.parse(data)); } catch (e) { /* not an alert */ } }
        }
      }
    } catch (e) {
      status("#alerts-status", "(reconnecting)", true);
    }
    await sleep(2000);
  }
}

// ---- funnels ----
function bar(label, n, max, extra, cls) {
  const pct = max > 0 ? (100 * n) / max : 0;
  const fill = el("div", { class: "fill" });
  fill.style.width = pct.toFixed(1) + "%";
  return el("div", { class: "bar " + (cls || ""), role: "img", "aria-label": label + ": " + n },
    el("span", {}, label), el("div", { class: "track" }, fill), el("span", {}, String(n) + (extra || "")));
}

async function refreshFunnels() {
  if (!state.me) return;
  const box = $("#funnels");
  try {
    const rep = await api("GET", "/v1/funnels");
    box.className = "";
    const parts = [];
    for (const f of rep.funnels) {
      const first = f.steps.length ? f.steps[0].reached : 0;
      parts.push(el("h3", {}, f.name + " (users " + f.users + ", conversions " + f.conversions + ")"));
      for (const s of f.steps) parts.push(bar(s.name, s.reached, first, first ? " " + Math.round((100 * s.reached) / first) + "%" : ""));
      parts.push(el("h4", {}, "Time to convert" + (f.median_convert_seconds ? " (median " + dur(f.median_convert_seconds) + ")" : "")));
      const maxH = Math.max(0, ...f.convert_histogram.map((b) => b.count));
      for (const b of f.convert_histogram) parts.push(bar(b.up_to_seconds ? "≤ " + dur(b.up_to_seconds) : "longer", b.count, maxH, "", "hist"));
    }
    box.replaceChildren(...parts);
  } catch (e) {
    box.className = "empty";
    box.textContent = e.status === 403 ? "The funnel report needs the analyst role." : "Funnels: " + e.message;
  }
}

// ---- sign-in, keys, timers ----
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function signIn(token) {
  state.token = token;
  try {
    state.me = await api("GET", "/v1/me");
    sessionStorage.setItem("cx-token", token);
    $("#whoami").textContent = "Signed in as " + state.me.name + " (" + state.me.role + ")";
    $("#whoami").className = "";
    await refreshQueue();
    refreshFunnels();
  } catch (e) {
    state.me = null;
    $("#whoami").textContent = "Sign-in failed: " + e.message;
    $("#whoami").className = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#signin").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("#token").value.trim()); });
  $("#claim-next").addEventListener("click", () => claim(""));
  $("#work-actions").addEventListener("submit", (ev) => { ev.preventDefault(); act("resolve"); });
  $("#release").addEventListener("click", () => act("release"));
  $("#extend").addEventListener("click", () => act("extend"));
  document.addEventListener("keydown", (ev) => {
    const t = ev.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const key = { n: () => claim(""), r: () => act("resolve"), l: () => act("release"), e: () => act("extend"), "/": () => $("#token").focus() }[ev.key];
    if (key) { ev.preventDefault(); key(); }
  });
  if (state.token) signIn(state.token);
  setInterval(refreshQueue, 2000);
  setInterval(refreshFunnels, 30000);
  streamAlerts();
});
