// confab's live page: draws the network from /state and animates every
// message from the server-sent events of /events. No library, no fetch
// from anywhere but this server. The layout is the report's (node/web_view.c):
// nodes on a circle in the order /state lists them.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const W = 800, H = 800;
const PALETTE = ["#e6a117", "#2a9d8f", "#b5179e", "#4361ee", "#e76f51",
                 "#6a994e"];
const svg = document.getElementById("net");
const layer = {
  links: svg.querySelector(".links"), labels: svg.querySelector(".labels"),
  nodes: svg.querySelector(".nodes"), packets: svg.querySelector(".packets"),
  legend: svg.querySelector(".legend"),
};
const $ = (id) => document.getElementById(id);

let state = null;          // the last /state
const byId = new Map();    // node id -> {x, y, el, name}
const got = new Map();     // node id -> Set of kinds it received
const sent = new Map();    // node id -> Set of kinds it sent
const lastLit = new Map(); // node id -> timer
const flown = new Map();   // mid + receiver -> when its path was drawn

function el(name, attrs, parent) {
  const e = document.createElementNS(SVGNS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function place(i, n) {
  const r = n <= 1 ? 0 : W / 2 - 70;
  const a = -Math.PI / 2 + 2 * Math.PI * i / (n || 1);
  return [W / 2 + r * Math.cos(a), H / 2 + r * Math.sin(a)];
}

function draw(s) {
  state = s;
  const net = s.network;
  for (const k of ["links", "labels", "nodes", "legend"])
    layer[k].replaceChildren();
  byId.clear();
  const n = net.nodes.length;
  const nr = n > 40 ? 9 : n > 12 ? 14 : 22;
  const gi = new Map(net.groups.map((g, i) => [g, i]));
  net.nodes.forEach((d, i) => {
    const [x, y] = place(i, n);
    byId.set(d.id, {x, y, name: d.name});
  });
  for (const l of net.links) {
    const a = byId.get(l.a), b = byId.get(l.b);
    if (!a || !b) continue;
    const line = el("line", {class: "link", x1: a.x, y1: a.y, x2: b.x,
                             y2: b.y, "data-a": a.name, "data-b": b.name},
                    layer.links);
    const rtt = l.rtt_us ? (l.rtt_us / 1000).toFixed(2) + " ms" : "";
    el("title", {}, line).textContent =
        a.name + " - " + b.name + (rtt ? ": round trip " + rtt : "");
    if (rtt && n <= 12)
      el("text", {class: "linklabel", x: (a.x + b.x) / 2,
                  y: (a.y + b.y) / 2 - 3}, layer.labels).textContent = rtt;
  }
  net.nodes.forEach((d) => {
    const p = byId.get(d.id);
    const g = el("g", {class: "node" + (d.local ? "" : " remote"),
                       "data-name": d.name, "data-id": d.id,
                       "data-groups": d.groups.join(" ")}, layer.nodes);
    for (let k = d.groups.length - 1; k >= 0; k--)
      el("circle", {class: "ring", cx: p.x, cy: p.y, r: nr + 4 + 5 * k,
                    fill: "none", "stroke-width": 4,
                    stroke: PALETTE[gi.get(d.groups[k]) % 6]}, g);
    el("circle", {class: "dot", cx: p.x, cy: p.y, r: nr}, g);
    el("text", {x: p.x, y: p.y + nr + 16 + 5 * d.groups.length}, g)
        .textContent = d.name;
    el("title", {}, g).textContent = d.name + " (" + d.id + ")" +
        (d.groups.length ? "\ngroups: " + d.groups.join(", ") : "");
    p.el = g;
    mark(d.id);
  });
  net.groups.forEach((name, i) => {
    el("text", {x: 10, y: 20 + 18 * i, fill: PALETTE[i % 6]}, layer.legend)
        .textContent = "group " + name;
  });
  svg.dataset.nodes = n;
  svg.dataset.links = net.links.length;
  $("summary").textContent = n + " nodes, " + net.links.length + " links, " +
      net.groups.length + (net.groups.length === 1 ? " group" : " groups");
  $("stepbox").hidden = !s.step;
  $("sendbox").hidden = !s.allow_send;
  document.body.dataset.drawn = "1";
}

// The kinds a node received and sent, kept across redraws, as attributes
// a test (or a person in the inspector) can read.
function mark(id) {
  const p = byId.get(id);
  if (!p || !p.el) return;
  p.el.dataset.got = [...(got.get(id) || [])].join(" ");
  p.el.dataset.sent = [...(sent.get(id) || [])].join(" ");
  p.el.classList.toggle("sender", (sent.get(id) || new Set()).size > 0);
}

function add(map, id, kind) {
  if (!map.has(id)) map.set(id, new Set());
  map.get(id).add(kind);
  mark(id);
}

function light(id, kind, delay) {
  if (delay) { setTimeout(() => light(id, kind), delay); return; }
  const p = byId.get(id);
  if (!p || !p.el) return;
  for (const k of ["unicast", "broadcast", "shout", "anycast"])
    p.el.classList.remove("lit-" + k);
  p.el.classList.add("lit-" + kind);
  clearTimeout(lastLit.get(id));
  lastLit.set(id, setTimeout(() => p.el.classList.remove("lit-" + kind),
                             2500));
}

// A packet flies from sender to receiver; the receiver lights up when it
// lands. The landing is on a timer, not on animation frames, which a
// hidden tab (or a headless browser between screenshots) does not run.
function fly(from, to, kind, quiet) {
  const a = byId.get(from), b = byId.get(to);
  if (!a || !b) { if (!quiet) light(to, kind); return; }
  const dot = el("circle", {class: "pkt " + kind, r: 6, cx: a.x, cy: a.y},
                 layer.packets);
  const t0 = performance.now(), ms = 700;
  let landed = false;
  function step(t) {
    if (landed) return;
    const f = Math.min(1, (t - t0) / ms);
    dot.setAttribute("cx", a.x + (b.x - a.x) * f);
    dot.setAttribute("cy", a.y + (b.y - a.y) * f);
    if (f < 1) requestAnimationFrame(step);
  }
  requestAnimationFrame(step);
  // quiet: the receiver is shown, and lights up when it says it got it
  // (an anycast member that does not take it stays dark).
  setTimeout(() => { landed = true; dot.remove();
                     if (!quiet) light(to, kind); }, ms);
}

function name(id) {
  const p = byId.get(id);
  return p ? p.name : id.slice(0, 8);
}

function log(text) {
  const li = document.createElement("li");
  li.textContent = text;
  const ol = $("log");
  ol.prepend(li);
  while (ol.children.length > 200) ol.lastChild.remove();
}

let reloadTimer = null;
function reload(delay) {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    fetch("/state", {cache: "no-store"}).then((r) => r.json()).then(draw)
        .catch(() => {});
  }, delay);
}

function onEvent(ev) {
  switch (ev.t) {
  case "hello":
    reload(0);
    break;
  case "sent": {
    // A message framed for a peer: its path, drawn from the sender (an
    // anycast's failover shows as a second path to the next member).
    add(sent, ev.node, ev.kind);
    const key = ev.mid + ev.peer;
    flown.set(key, performance.now());
    fly(ev.node, ev.peer, ev.kind, byId.has(ev.peer) &&
        (byId.get(ev.peer).el || {}).classList &&
        !byId.get(ev.peer).el.classList.contains("remote"));
    if (flown.size > 5000) flown.clear();
    break;
  }
  case "msg":
    add(got, ev.node, ev.kind);
    add(sent, ev.from, ev.kind);
    // Drawn already from the sender's side when the sender is shown.
    if (flown.delete(ev.mid + ev.node)) light(ev.node, ev.kind, 700);
    else fly(ev.from, ev.node, ev.kind, false);
    // Received before /state listed it: light it once drawn.
    if (!byId.has(ev.node)) reload(200);
    log(ev.kind + " " + name(ev.from) + " -> " + name(ev.node) +
        (ev.group ? " (group " + ev.group + ")" : ""));
    break;
  case "outcome":
    if (ev.status === "delivered" && ev.peer)
      log("delivered: " + name(ev.node) + "'s message taken by " +
          name(ev.peer));
    else
      log(name(ev.node) + "'s message " + ev.status);
    break;
  case "peer":
  case "group":
    reload(300);
    break;
  case "step": {
    const p = $("step");
    p.dataset.pattern = ev.pattern || "";
    p.dataset.state = ev.state || "";
    p.dataset.step = ev.step;
    p.textContent = ev.text || "";
    $("next").disabled = ev.state === "sending" || ev.state === "finished";
    // The patterns done this round, for a reader that looks later (the
    // next one's "waiting" comes right after a "done").
    const done = new Set((p.dataset.done || "").split(" ").filter(Boolean));
    if (ev.step === 1 && ev.state === "sending") done.clear();
    if (ev.state === "done") { done.add(ev.pattern); reload(0); }
    p.dataset.done = [...done].join(" ");
    break;
  }
  }
}

function connect() {
  const es = new EventSource("/events");
  es.onopen = () => { $("conn").dataset.state = "live";
                      $("conn").textContent = "live"; };
  es.onerror = () => { $("conn").dataset.state = "connecting";
                       $("conn").textContent = "reconnecting"; };
  es.onmessage = (m) => {
    try { onEvent(JSON.parse(m.data)); } catch (e) { /* not ours */ }
  };
}

function nextStep() {
  if ($("stepbox").hidden || $("next").disabled) return;
  fetch("/api/step", {method: "POST", headers: {"X-Confab": "1"}});
}

$("next").addEventListener("click", nextStep);
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT") return;
  if (e.key === " " || e.key === "Enter" || e.key === "ArrowRight" ||
      e.key === "n") { e.preventDefault(); nextStep(); }
});
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const kind = $("kind").value, target = $("target").value;
  const q = new URLSearchParams({kind, body: $("body").value});
  if (kind === "unicast") q.set("to", target);
  else if (kind !== "broadcast") q.set("group", target);
  fetch("/api/send?" + q, {method: "POST", headers: {"X-Confab": "1"}})
      .then((r) => r.text()).then((t) => log(t.trim()));
});

setInterval(() => reload(0), 5000); // round trips change
connect();
