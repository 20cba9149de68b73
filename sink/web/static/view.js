// The meterkit live view. Every name, label and unit is user data: it is
// only ever set as text (textContent, uPlot labels drawn on a canvas),
// never as HTML.
"use strict";

(function () {
  const app = document.getElementById("app");
  const PAGE = 50; // hosts or charts per page
  const WINDOWS = [["5 min", 300], ["15 min", 900], ["1 hour", 3600], ["6 hours", 21600], ["24 hours", 86400]];

  // State shared by the views.
  const series = new Map(); // id -> {meta, t: [], v: []} (seconds, values)
  let windowSec = 900;
  let search = "";
  let page = 0;
  let charts = []; // {key, plot, ids, el}
  let dirty = false;
  let position = null; // where the event stream resumes
  let source = null;

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }

  function route() {
    const h = decodeURIComponent(location.hash.slice(1));
    return h.startsWith("host/") ? { host: h.slice(5) } : {};
  }

  // family is the part of a meter name before its first dot: cpu, memory,
  // disk, network.
  function family(name) {
    const i = name.indexOf(".");
    return i > 0 ? name.slice(0, i) : name;
  }

  function unitOf(m) {
    if (m.kind !== "cumulative") return m.unit;
    return (m.unit || "1") + "/s";
  }

  function lineLabel(m) {
    let s = m.name;
    if (m.resource_id) s += " " + m.resource_id;
    const ls = Object.entries(m.labels || {}).filter(([k]) => !k.startsWith("meterkit."));
    if (ls.length) s += " {" + ls.map(([k, v]) => k + "=" + v).join(", ") + "}";
    return s;
  }

  function addPoint(s, t, v) {
    const n = s.t.length;
    if (n && t < s.t[n - 1]) { // late: keep the arrays sorted
      let i = n;
      while (i > 0 && s.t[i - 1] > t) i--;
      s.t.splice(i, 0, t);
      s.v.splice(i, 0, v);
    } else {
      s.t.push(t);
      s.v.push(v);
    }
    const cut = s.t[s.t.length - 1] - 86400 - 60; // keep a day, the widest window
    let drop = 0;
    while (drop < s.t.length && s.t[drop] < cut) drop++;
    if (drop) { s.t.splice(0, drop); s.v.splice(0, drop); }
  }

  async function api(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
    return r.json();
  }

  // enter loads what the view of the current address needs: the hosts, or
  // one host's series (metadata only) and where its stream resumes.
  let view = 0; // bumped by each change of view, so that late answers are dropped
  let hosts = []; // [{host, series, last}]
  async function enter() {
    const my = ++view;
    if (source) { source.close(); source = null; }
    series.clear();
    const r = route();
    if (r.host === undefined) {
      const l = await api("api/hosts");
      if (my !== view) return;
      hosts = l.hosts;
      render();
      return;
    }
    const l = await api("api/series?limit=100000&host=" + encodeURIComponent(r.host));
    if (my !== view) return;
    for (const m of l.series) series.set(m.id, { meta: m, t: [], v: [], loaded: false });
    position = l.position;
    render();
    stream(r.host);
  }

  // refreshHosts updates the list of hosts every few seconds.
  async function refreshHosts() {
    if (route().host !== undefined) return;
    const my = view;
    const l = await api("api/hosts");
    if (my !== view || route().host !== undefined) return;
    hosts = l.hosts;
    renderHostList();
  }

  async function loadPoints(ids) {
    await Promise.all(ids.map(async (id) => {
      const s = series.get(id);
      if (!s || s.loaded) return;
      s.loaded = true;
      // A day before its newest point: the widest window.
      const from = new Date(Date.parse(s.meta.last.time) - 86400 * 1000).toISOString();
      const r = await api("api/series/" + id + "?from=" + encodeURIComponent(from));
      s.meta = r.series;
      const t = [], v = [];
      for (const p of r.points) { t.push(Date.parse(p.time) / 1000); v.push(p.value); }
      // Points that arrived by the stream meanwhile are newer: keep them.
      const last = t.length ? t[t.length - 1] : -Infinity;
      for (let i = 0; i < s.t.length; i++) if (s.t[i] > last) { t.push(s.t[i]); v.push(s.v[i]); }
      s.t = t; s.v = v;
    }));
  }

  function stream(host) {
    if (source) source.close();
    source = new EventSource("events?host=" + encodeURIComponent(host) + "&from=" + position);
    source.addEventListener("series", (e) => {
      const m = JSON.parse(e.data);
      const s = series.get(m.id);
      if (s) s.meta = m;
      else { series.set(m.id, { meta: m, t: [], v: [], loaded: true }); structureChanged(m); }
    });
    source.addEventListener("points", (e) => {
      for (const [id, ms, v] of JSON.parse(e.data)) {
        const s = series.get(id);
        if (s) addPoint(s, ms / 1000, v);
      }
      dirty = true;
    });
    source.addEventListener("reset", () => { status("some points were evicted before this page read them"); });
    source.onerror = () => status("reconnecting…");
    source.onopen = () => status("");
  }

  let structureTimer = null;
  function structureChanged(m) {
    const r = route();
    if (r.host !== undefined && m.host !== r.host) return;
    clearTimeout(structureTimer);
    structureTimer = setTimeout(render, 500);
  }

  function status(text) {
    const s = document.getElementById("status");
    if (s) s.textContent = text;
  }

  // ---- rendering ----

  function header() {
    const sel = el("select", { id: "window", on: { change: (e) => { windowSec = +e.target.value; dirty = true; redraw(); } } });
    for (const [label, sec] of WINDOWS) {
      const o = el("option", { value: String(sec), text: label });
      if (sec === windowSec) o.selected = true;
      sel.append(o);
    }
    const input = el("input", { id: "search", type: "search", placeholder: "search", value: search, on: {
      input: (e) => {
        search = e.target.value; page = 0; clearTimeout(structureTimer);
        structureTimer = setTimeout(route().host === undefined ? renderHostList : render, 200);
      },
    } });
    const r = route();
    return el("header", {},
      el("a", { href: "#", text: "hosts" }),
      r.host !== undefined ? el("span", { class: "crumb", text: " / " + (r.host || "(no host)") }) : null,
      el("label", {}, " window ", sel),
      el("label", {}, " ", input),
      el("span", { id: "clock" }),
      el("a", { href: "feed.atom", text: "state changes (Atom)" }),
      el("span", { id: "status" }));
  }

  function pager(total, onPage) {
    const pages = Math.max(1, Math.ceil(total / PAGE));
    if (pages === 1) return null;
    return el("nav", { class: "pager" },
      el("button", { text: "‹", on: { click: () => onPage(Math.max(0, page - 1)) } }),
      el("span", { text: " page " + (page + 1) + " of " + pages + " " }),
      el("button", { text: "›", on: { click: () => onPage(Math.min(pages - 1, page + 1)) } }));
  }

  function render() {
    for (const c of charts) c.plot.destroy();
    charts = [];
    const r = route();
    app.replaceChildren(header());
    if (r.host === undefined) renderHosts(); else renderHost(r.host);
    const s = document.getElementById("search");
    if (s && search) { s.focus(); s.setSelectionRange(search.length, search.length); }
  }

  function renderHosts() {
    app.append(el("div", { id: "hostlist" }));
    renderHostList();
  }

  function renderHostList() {
    const box = document.getElementById("hostlist");
    if (!box) return;
    const q = search.toLowerCase();
    const shown = hosts.filter((h) => h.host.toLowerCase().includes(q));
    page = Math.min(page, Math.max(0, Math.ceil(shown.length / PAGE) - 1));
    const list = el("ul", { class: "hosts", id: "hosts" });
    for (const h of shown.slice(page * PAGE, (page + 1) * PAGE)) {
      list.append(el("li", { "data-host": h.host },
        el("a", { href: "#host/" + encodeURIComponent(h.host), text: h.host || "(no host)" }),
        el("span", { class: "meta", text: " " + h.series + " series, last " + new Date(h.last).toLocaleString() })));
    }
    box.replaceChildren(el("h1", { text: shown.length + " host" + (shown.length === 1 ? "" : "s") }), list);
    const pg = pager(shown.length, (p) => { page = p; renderHostList(); });
    if (pg) box.append(pg);
    if (!shown.length) box.append(el("p", { text: hosts.length ? "No host matches." : "Nothing has arrived yet." }));
  }

  function renderHost(host) {
    const q = search.toLowerCase();
    const groups = new Map(); // family + unit -> ids
    for (const [id, s] of series) {
      const m = s.meta;
      if (m.host !== host || m.name.startsWith("meterkit.")) continue;
      if (q && !lineLabel(m).toLowerCase().includes(q)) continue;
      const key = family(m.name) + " (" + (unitOf(m) || "no unit") + ")";
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(id);
    }
    const keys = [...groups.keys()].sort();
    app.append(el("h1", { text: host || "(no host)" }));
    const pg = pager(keys.length, (p) => { page = p; render(); });
    if (pg) app.append(pg);
    const shown = keys.slice(page * PAGE, (page + 1) * PAGE);
    const grid = el("div", { class: "charts" });
    app.append(grid);
    for (const key of shown) {
      const box = el("section", { class: "chart", "data-chart": key });
      const n = groups.get(key).length;
      const title = el("h2", { text: key });
      const count = n > 20 ? el("span", { class: "meta", text: n + " series" }) : null;
      const csv = el("button", { class: "csv", text: "CSV" });
      const png = el("button", { class: "png", text: "PNG" });
      box.append(el("div", { class: "chart-head" }, title, count, csv, png));
      grid.append(box);
      const c = { key, ids: groups.get(key).sort((a, b) => lineLabel(series.get(a).meta).localeCompare(lineLabel(series.get(b).meta))), el: box };
      c.plot = makePlot(c);
      csv.addEventListener("click", () => download(key + ".csv", new Blob([toCSV(c)], { type: "text/csv" })));
      png.addEventListener("click", () => c.plot.ctx.canvas.toBlob((b) => download(key + ".png", b)));
      charts.push(c);
    }
    // Each chart draws as soon as its own series are loaded, in page order.
    for (const c of charts) {
      loadPoints(c.ids).then(() => { if (charts.includes(c)) c.plot.setData(data(c)); }).catch((e) => status(String(e)));
    }
  }

  function makePlot(c) {
    const unit = unitOf(series.get(c.ids[0]).meta);
    const opts = {
      width: Math.min(560, window.innerWidth - 40),
      height: 220,
      scales: { x: { time: true } },
      legend: { show: c.ids.length <= 20 }, // beyond, the CSV names them
      series: [{ label: "local time" }].concat(c.ids.map((id, i) => ({
        label: lineLabel(series.get(id).meta),
        stroke: "hsl(" + ((i * 67) % 360) + ",65%,45%)",
        spanGaps: true,
        value: (u, v) => v == null ? "–" : si(v, 4) + (unit ? " " + unit : ""),
      }))),
      axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => si(v, 3)) }],
    };
    return new uPlot(opts, data(c), c.el);
  }

  // si writes v with an SI prefix (k, M, G, …) and p significant digits.
  function si(v, p) {
    const a = Math.abs(v);
    for (const [f, s] of [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
      if (a >= f) return +(v / f).toPrecision(p) + s;
    }
    return String(+v.toPrecision(p));
  }

  // data joins the chart's series on one time axis, within the window that
  // ends now, or at the chart's newest point if that is later (a clock ahead)
  // or much earlier (a replay, a clock behind: the chart is not left empty);
  // a cumulative series becomes its rate per second (a reset is a gap).
  function data(c) {
    const now = Date.now() / 1000;
    let newest = -Infinity;
    for (const id of c.ids) {
      const s = series.get(id);
      if (s.t.length) newest = Math.max(newest, s.t[s.t.length - 1]);
    }
    const end = newest > now || newest < now - windowSec ? newest : now;
    const from = end - windowSec;
    const cols = c.ids.map((id) => {
      const s = series.get(id);
      const cum = s.meta.kind === "cumulative";
      const m = new Map();
      for (let i = 0; i < s.t.length; i++) {
        if (s.t[i] < from) continue;
        if (!cum) { m.set(s.t[i], s.v[i]); continue; }
        if (i === 0) continue;
        const dt = s.t[i] - s.t[i - 1], dv = s.v[i] - s.v[i - 1];
        m.set(s.t[i], dt > 0 && dv >= 0 ? dv / dt : null);
      }
      return m;
    });
    const xs = [...new Set(cols.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
    const out = [xs];
    for (const m of cols) out.push(xs.map((x) => (m.has(x) ? m.get(x) : null)));
    c.el.dataset.points = String(cols.reduce((n, m) => n + m.size, 0));
    return out;
  }

  function redraw() {
    if (!dirty) return;
    dirty = false;
    for (const c of charts) c.plot.setData(data(c));
  }

  // CSV text cells that a spreadsheet would run as a formula get a leading
  // apostrophe: names are user data. Numbers are written as they are.
  function cell(v) {
    let s = String(v);
    if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    if (/[",\n\r]/.test(s)) s = '"' + s.replace(/"/g, '""') + '"';
    return s;
  }

  function toCSV(c) {
    const d = data(c);
    const rows = [["time_utc"].concat(c.ids.map((id) => lineLabel(series.get(id).meta))).map(cell).join(",")];
    for (let i = 0; i < d[0].length; i++) {
      const row = [new Date(d[0][i] * 1000).toISOString()];
      for (let j = 1; j < d.length; j++) row.push(d[j][i] == null ? "" : d[j][i]);
      rows.push(row.map(cell).join(","));
    }
    return rows.join("\r\n") + "\r\n";
  }

  function download(name, blob) {
    const a = el("a", { href: URL.createObjectURL(blob), download: name.replace(/[^\w.()-]+/g, "_") });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  function tick() {
    const c = document.getElementById("clock");
    if (c) c.textContent = " " + new Date().toLocaleTimeString() + " local, " + new Date().toISOString().slice(11, 19) + " UTC ";
    redraw();
  }

  const failed = (e) => { app.textContent = "Could not load the view: " + e; };
  window.addEventListener("hashchange", () => { page = 0; search = ""; enter().catch(failed); });
  enter().then(() => { setInterval(tick, 1000); tick(); }).catch(failed);
  setInterval(() => refreshHosts().catch((e) => status(String(e))), 5000);
})();
