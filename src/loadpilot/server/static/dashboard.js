/* loadpilot dashboard: overview, pool, host, events and coordination pages over the server's read API.
 *
 * Everything shown is built with DOM nodes and text nodes (never innerHTML), so a resource name or an event reason
 * containing markup renders as text. Times are shown in the browser's time zone. Pages poll the API every few
 * seconds (short polling: it works through every proxy) and update in place; a read token, when the server asks
 * for one, is kept in this tab's sessionStorage and sent as a Bearer header.
 */
(function () {
  "use strict";

  const API = "/api/v1";
  const POLL_MS = 5000;
  const EVENTS_POLL_MS = 2000;
  const TOKEN_KEY = "loadpilot.read_token";

  // ---- DOM ---------------------------------------------------------------------------------------------------

  /** An element with attributes and children; strings become text nodes. */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid == null || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  function replace(el, ...kids) {
    el.replaceChildren(...kids.flat().filter((k) => k != null && k !== false));
  }

  /** A path segment per part of an id ("pool/web/w1" keeps its slashes as separators). */
  function idPath(id) {
    return String(id).split("/").map(encodeURIComponent).join("/");
  }

  function poolLink(name) {
    return h("a", { href: "/pools/" + encodeURIComponent(name) }, name);
  }

  function hostLink(id, name) {
    return h("a", { href: "/hosts/" + idPath(id) }, name || id);
  }

  /** An event's subject, linked when it names a pool. */
  function subjectLink(subject) {
    const s = String(subject);
    return s.startsWith("pool/") ? poolLink(s.slice(5).split("/")[0]) : s;
  }

  /** The part of the address after `prefix`, decoded segment by segment ("" when it is malformed). */
  function pathAfter(prefix) {
    try {
      return location.pathname.slice(prefix.length).split("/").map(decodeURIComponent).join("/");
    } catch (_) {
      return "";
    }
  }

  // ---- numbers and times -------------------------------------------------------------------------------------

  const isNum = (v) => typeof v === "number" && isFinite(v);
  const pct = (v) => (isNum(v) ? (v * 100).toFixed(0) + " %" : "–");
  const num = (v, d = 1) => (isNum(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(d)) : "–");
  const ms = (v) => (isNum(v) ? (v * 1000).toFixed(v < 0.01 ? 1 : 0) + " ms" : "–");
  function bytes(v) {
    if (!isNum(v)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v.toFixed(0)) + " " + units[i];
  }
  const clock = (t) => (isNum(t) ? new Date(t * 1000).toLocaleTimeString() : "–");
  const stamp = (t) => (isNum(t) ? new Date(t * 1000).toLocaleString() : "–");
  function ago(t, now) {
    if (!isNum(t)) return "never";
    const s = Math.max(0, (now || Date.now() / 1000) - t);
    return s < 90 ? s.toFixed(0) + " s ago" : s < 5400 ? (s / 60).toFixed(0) + " min ago" : (s / 3600).toFixed(1) + " h ago";
  }

  function bar(value) {
    const fill = h("span");
    if (isNum(value)) {
      fill.style.width = Math.min(100, Math.max(0, value * 100)).toFixed(1) + "%";
      if (value >= 0.9) fill.className = "bad";
      else if (value >= 0.7) fill.className = "warn";
    }
    return [h("span", { class: "bar", title: pct(value) }, fill), h("span", { class: "pct" }, pct(value))];
  }

  /** How a result reads: "bad" (failed, refused, an error, gone), "ok" (done, kept, ready...) or "warn". */
  function resultClass(result) {
    const r = String(result);
    if (/(fail|error|refused|fatal|gone|retry)/.test(r)) return "bad";
    return /^(ok|kept|joined|leader|ready|done|completed|stored)/.test(r) ? "ok" : "warn";
  }

  function badge(result) {
    return h("span", { class: "badge " + resultClass(result) }, String(result));
  }

  // ---- the API -----------------------------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, detail) {
      super(detail || "HTTP " + status);
      this.status = status;
    }
  }

  async function api(path, params) {
    const url = new URL(API + path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v != null && v !== "") url.searchParams.set(k, v);
    }
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const resp = await fetch(url, { headers });
    if (!resp.ok) {
      let detail = "";
      try { detail = (await resp.json()).detail; } catch (_) { /* not JSON */ }
      if (resp.status === 401) askForToken();
      throw new HttpError(resp.status, typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return resp.json();
  }

  /** The server asks for a read token: a small form above the page; the token stays in this tab only. */
  function askForToken() {
    if (document.getElementById("token-form")) return;
    const input = h("input", { type: "password", name: "token", placeholder: "server.read_token", autocomplete: "off" });
    const form = h("form", { id: "token-form", class: "filters error" },
      "This server needs a read token:", input, h("button", { type: "submit" }, "Use it"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      form.remove();
      refreshNow();
    });
    document.querySelector("main").prepend(form);
  }

  // ---- live updates ------------------------------------------------------------------------------------------

  let refreshNow = () => {};

  /** Call `load` now and every `period` ms (skipped while the tab is hidden); show when data was last fresh. */
  function live(load, period) {
    const status = document.getElementById("live");
    const errorBox = document.getElementById("problem");
    let timer = null;
    let lastOk = 0;
    let busy = false;
    async function tick() {
      if (busy) return; // one load at a time: a tick asked for meanwhile waits for the next period
      busy = true;
      clearTimeout(timer);
      let wait = period;
      try {
        if (!document.hidden) {
          await load();
          lastOk = Date.now();
          errorBox.hidden = true;
        }
      } catch (err) {
        errorBox.hidden = false;
        replace(errorBox, err.status === 404 ? err.message : "Could not load: " + err.message);
        if (err.status === 404) wait = 4 * period; // it may appear later (a pool that has not reported yet)
      } finally {
        busy = false;
      }
      const stale = Date.now() - lastOk > 3 * period;
      status.className = "live" + (stale ? " stale" : "");
      replace(status, lastOk ? (stale ? "stale since " : "live · updated ") + new Date(lastOk).toLocaleTimeString() : "loading…");
      clearTimeout(timer);
      timer = setTimeout(tick, wait);
    }
    refreshNow = tick;
    document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
    tick();
  }

  // ---- charts (uPlot) ----------------------------------------------------------------------------------------

  const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  const COLORS = ["#2f6fde", "#2e9d5b", "#d99a00", "#d64545", "#8e44ad", "#16a2b8"];
  const charts = new Map();

  function chartWidth(el) {
    return Math.max(260, el.clientWidth || el.parentElement.clientWidth || 300);
  }

  /** Draw or update a time chart in `el`. `t` is seconds; each series is {label, values, and optionally: fmt (its
   *  legend's number format), axis (its axis' format; default uPlot's), right (on a second axis), ints (a count:
   *  whole-number ticks), dash, color}. `el.dataset.points` counts the values drawn. */
  function timeChart(el, key, title, t, series, height = 200) {
    const data = [t, ...series.map((s) => s.values.map((v) => (isNum(v) ? v : null)))];
    el.dataset.points = String(data.slice(1).reduce((n, vs) => n + vs.filter((v) => v != null).length, 0));
    const existing = charts.get(key);
    if (existing && existing.el === el && existing.n === series.length) {
      existing.plot.setData(data);
      return existing.plot;
    }
    if (existing) existing.plot.destroy();
    const hasRight = series.some((s) => s.right);
    const left = series.find((s) => !s.right) || series[0];
    const right = series.find((s) => s.right);
    const opts = {
      title,
      width: chartWidth(el),
      height,
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.1 : 1] } },
      axes: [
        {},
        { scale: "y", values: left.axis && ((u, ticks) => ticks.map(left.axis)), size: 64, incrs: left.ints ? COUNT_INCRS : undefined },
        hasRight ? { scale: "r", side: 1, grid: { show: false }, values: right.axis && ((u, ticks) => ticks.map(right.axis)), size: 72 } : null,
      ].filter(Boolean),
      series: [
        { value: (u, v) => clock(v) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color || COLORS[i % COLORS.length],
          width: 1.6,
          scale: s.right ? "r" : "y",
          spanGaps: true,
          dash: s.dash,
          value: (u, v) => (v == null ? "–" : (s.fmt || ((x) => num(x, 2)))(v)),
        })),
      ],
    };
    if (hasRight) opts.scales.r = { range: (u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.1 : 1] };
    el.replaceChildren();
    const plot = new uPlot(opts, data, el);
    charts.set(key, { el, plot, n: series.length });
    return plot;
  }

  window.addEventListener("resize", () => {
    for (const { el, plot } of charts.values()) plot.setSize({ width: chartWidth(el), height: plot.height });
  });

  // ---- the heat map ------------------------------------------------------------------------------------------

  function heatColor(v) {
    if (v == null) return "rgba(128,128,128,0.18)";
    const x = Math.min(100, Math.max(0, v)) / 100;
    const hue = x < 0.5 ? 140 - (140 - 50) * (x / 0.5) : 50 - 50 * ((x - 0.5) / 0.5);
    return "hsl(" + hue.toFixed(0) + " " + (60 + 30 * x).toFixed(0) + "% " + (45 + 5 * (1 - Math.abs(x - 0.5) * 2)).toFixed(0) + "%)";
  }

  /** Hosts as rows, time buckets as columns, CPU as colour; hover names the cell, a click opens the host. */
  function heatMap(box, hosts, heat) {
    const rows = heat.rows;
    const cols = rows.length ? Math.max(...rows.map((r) => r.length)) : 0;
    const rowH = rows.length ? Math.max(1, Math.min(14, Math.floor(420 / rows.length))) : 1;
    const canvas = h("canvas", { width: Math.max(1, cols) * 8, height: Math.max(1, rows.length * rowH), role: "img",
      "aria-label": "CPU of " + rows.length + " hosts over time" });
    canvas.style.height = rows.length * rowH + "px";
    const ctx = canvas.getContext("2d");
    rows.forEach((row, y) => {
      for (let x = 0; x < cols; x++) {
        ctx.fillStyle = heatColor(row[x]);
        ctx.fillRect(x * 8, y * rowH, 8, rowH);
      }
    });
    const tip = h("div", { class: "tooltip" });
    function cell(e) {
      const r = canvas.getBoundingClientRect();
      const x = Math.floor(((e.clientX - r.left) / r.width) * cols);
      const y = Math.floor(((e.clientY - r.top) / r.height) * rows.length);
      return y >= 0 && y < rows.length && x >= 0 && x < cols ? { x, y, left: e.clientX - r.left, top: e.clientY - r.top } : null;
    }
    canvas.addEventListener("mousemove", (e) => {
      const c = cell(e);
      if (!c) { tip.style.display = "none"; return; }
      const v = rows[c.y][c.x];
      replace(tip, hosts[c.y].name + " · " + clock(heat.start + c.x * heat.step_s) + " · " + (v == null ? "no data" : v + " %"));
      tip.style.display = "block";
      tip.style.left = Math.min(c.left + 12, canvas.clientWidth - 180) + "px";
      tip.style.top = c.top + 12 + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    canvas.addEventListener("click", (e) => {
      const c = cell(e);
      if (c) location.href = "/hosts/" + idPath(hosts[c.y].id);
    });
    const end = heat.start + cols * heat.step_s;
    replace(box,
      h("div", { class: "heat" }, canvas, tip),
      h("div", { class: "heat axis" }, h("span", {}, clock(heat.start)), h("span", {}, "hosts, hottest first"), h("span", {}, clock(end))),
      h("div", { class: "legend" }, "0 %", h("i"), "100 % CPU", h("span", {}, " · grey: no data")));
  }

  // ---- shared pieces -----------------------------------------------------------------------------------------

  function tile(label, value) {
    return h("div", { class: "tile" }, h("div", { class: "v" }, value), h("div", { class: "k" }, label));
  }

  function table(headers, rows, numeric = []) {
    return h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, headers.map((x, i) => h("th", { class: numeric.includes(i) ? "num" : null }, x)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) => h("td", { class: numeric.includes(i) ? "num" : null }, c)))))));
  }

  function detailsOf(d) {
    if (!d || typeof d !== "object" || !Object.keys(d).length) return "";
    return h("details", {}, h("summary", {}, Object.keys(d).slice(0, 4).join(", ") + (Object.keys(d).length > 4 ? ", …" : "")),
      h("pre", {}, JSON.stringify(d, null, 1)));
  }

  function eventRow(e, fresh) {
    const tr = h("tr", { class: fresh ? "fresh" : null, "data-id": e.id },
      h("td", { title: stamp(e.time) }, clock(e.time)),
      h("td", {}, e.kind),
      h("td", {}, subjectLink(e.subject)),
      h("td", {}, badge(e.result)),
      h("td", { class: "wrap" }, e.reason),
      h("td", { class: "wrap hide-narrow" }, detailsOf(e.details)));
    return tr;
  }

  function eventsTable(events) {
    return h("div", { class: "scroll" }, h("table", { class: "events" },
      h("thead", {}, h("tr", {}, ["time", "kind", "subject", "result", "reason", h("span", { class: "hide-narrow" }, "inputs")].map((x) => h("th", {}, x)))),
      h("tbody", {}, events.map((e) => eventRow(e, false)))));
  }

  function panel(title, ...kids) {
    return h("section", { class: "panel" }, title ? h("h2", {}, title) : null, ...kids);
  }

  const windowParam = () => new URLSearchParams(location.search).get("window") || "900";

  // ---- pages -------------------------------------------------------------------------------------------------

  function overviewPage(root) {
    const tiles = h("div", { class: "tiles" });
    const heatBox = h("div", {});
    const hostsBox = h("div", {});
    const poolsBox = h("div", { class: "grid" });
    const eventsBox = h("div", {});
    const filter = h("input", { type: "search", placeholder: "filter hosts", "aria-label": "filter hosts" });
    let showAll = false;
    let last = null;
    replace(root,
      h("h1", {}, "Overview"),
      tiles,
      h("div", { class: "grid" },
        panel("Host CPU over time", heatBox),
        panel("Hosts", h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, filter), hostsBox)),
      h("h2", {}, "Pools"),
      poolsBox,
      panel("Recent events", eventsBox, h("p", { class: "note" }, h("a", { href: "/events" }, "all events →"))));
    filter.addEventListener("input", () => last && drawHosts(last));

    function drawHosts(d) {
      const q = filter.value.trim().toLowerCase();
      const hosts = d.hosts.filter((x) => !q || String(x.name).toLowerCase().includes(q) || String(x.id).toLowerCase().includes(q))
        .sort((a, b) => (b.cpu ?? -1) - (a.cpu ?? -1));
      const shown = showAll ? hosts : hosts.slice(0, 25);
      replace(hostsBox,
        table(["host", "CPU", "memory", "VMs", "workers", "seen"],
          shown.map((x) => [hostLink(x.id, x.name), bar(x.cpu), bar(x.mem), String(x.vms), String(x.workers), ago(x.last_seen, d.now)]), [3, 4]),
        hosts.length > shown.length
          ? h("p", { class: "note" }, "the " + shown.length + " hottest of " + hosts.length + " · ",
            h("a", { href: "#", onclick: (e) => { e.preventDefault(); showAll = true; drawHosts(d); } }, "show all"))
          : null);
    }

    live(async () => {
      const d = await api("/dash/overview", { window_s: windowParam() });
      last = d;
      const cpus = d.hosts.map((x) => x.cpu).filter(isNum);
      replace(tiles,
        tile("hosts", String(d.counts.hosts)),
        tile("mean host CPU", cpus.length ? pct(cpus.reduce((a, b) => a + b, 0) / cpus.length) : "–"),
        tile("VMs", String(d.counts.vms)),
        tile("pools", String(d.counts.pools)),
        tile("workers", String(d.counts.workers)));
      const order = d.hosts.map((x, i) => i).sort((a, b) => (d.hosts[b].cpu ?? -1) - (d.hosts[a].cpu ?? -1));
      heatMap(heatBox, order.map((i) => d.hosts[i]), { ...d.heat, rows: order.map((i) => d.heat.rows[i] || []) });
      drawHosts(d);
      drawPools(d);
      replace(eventsBox, d.events.length ? eventsTable(d.events.slice(0, 10)) : h("p", { class: "muted" }, "no events yet"));
    }, POLL_MS);

    function drawPools(d) {
      if (!d.pools.length) {
        replace(poolsBox, panel(null, h("p", { class: "muted" }, "no pools reporting")));
        return;
      }
      const names = d.pools.map((p) => p.name).join("\n");
      if (poolsBox.dataset.names !== names) {
        poolsBox.dataset.names = names;
        for (const [key, chart] of charts) {
          if (key.startsWith("pool:")) { chart.plot.destroy(); charts.delete(key); }
        }
        replace(poolsBox, d.pools.map((p) => h("section", { class: "panel", "data-pool": p.name },
          h("h2", {}, poolLink(p.name)), h("div", { class: "numbers" }),
          h("div", { class: "chart size" }), h("div", { class: "chart load" }))));
      }
      d.pools.forEach((p, i) => {
        const card = poolsBox.children[i];
        replace(card.querySelector(".numbers"), h("p", { class: "muted" },
          p.reporting ? null : [badge("not reporting"), " since " + ago(p.last_seen, d.now) + " · last: "],
          "size " + num(p.size, 0) + " · ready " + num(p.ready, 0) + " · desired " + num(p.desired, 0) +
          " · CPU " + num(p.cpu, 2) + " · " + num(p.rps) + " req/s · p95 " + ms(p.p95)));
        timeChart(card.querySelector(".chart.size"), "pool:" + p.name + ":size", "", p.series.t, [
          { label: "ready", values: p.series.ready, fmt: (v) => num(v, 0), ints: true },
          { label: "size", values: p.series.size, fmt: (v) => num(v, 0) },
          { label: "desired", values: p.series.desired, dash: [4, 3], fmt: (v) => num(v, 0) },
          { label: "req/s", values: p.series.rps, right: true },
        ], 160);
        timeChart(card.querySelector(".chart.load"), "pool:" + p.name + ":load", "", p.series.t, [
          { label: "CPU / worker", values: p.series.cpu, fmt: (v) => num(v, 2) },
          { label: "p95", values: p.series.p95, right: true, fmt: ms, axis: ms },
        ], 130);
      });
    }
  }

  function poolPage(root) {
    const name = pathAfter("/pools/");
    const tiles = h("div", { class: "tiles" });
    const sizeChart = h("div", { class: "chart" });
    const loadChart = h("div", { class: "chart" });
    const cpuChart = h("div", { class: "chart" });
    const workersBox = h("div", {});
    const eventsBox = h("div", {});
    const policy = h("p", { class: "note" });
    replace(root,
      h("h1", {}, "Pool ", name),
      tiles,
      h("div", { class: "grid" },
        panel("Size against demand", sizeChart, policy),
        panel("Requests and latency", loadChart),
        panel("CPU per worker", cpuChart)),
      panel("Workers", workersBox),
      panel("Events", eventsBox));
    document.title = "Pool " + name + " · loadpilot";

    live(async () => {
      const d = await api("/dash/pools/" + encodeURIComponent(name), { window_s: windowParam() });
      const l = d.latest;
      replace(tiles, l.reporting ? null : tile("not reporting since", ago(l.last_seen, d.now)), tile("desired", num(l.desired, 0)), tile("size", num(l.size, 0)), tile("ready", num(l.ready, 0)),
        tile("failed", num(l.failed, 0)), tile("CPU / worker", num(l.cpu, 2)), tile("req/s", num(l.rps)), tile("p95", ms(l.p95)));
      const s = d.series;
      const a = d.autoscale;
      timeChart(sizeChart, "size", "", s.t, [
        { label: "ready", values: s.ready, fmt: (v) => num(v, 0), ints: true },
        { label: "size", values: s.size, fmt: (v) => num(v, 0) },
        { label: "desired", values: s.desired, dash: [4, 3], fmt: (v) => num(v, 0) },
        { label: "demand", values: s.demand, fmt: (v) => num(v, 1) },
      ]);
      replace(policy, a ? "autoscale: " + a.policy + " on " + a.metric + ", target " + a.target +
        " per worker; demand = the load in workers at that target" : "not autoscaled by this server's configuration");
      timeChart(loadChart, "load", "", s.t, [
        { label: "req/s", values: s.rps },
        { label: "p95", values: s.p95, right: true, fmt: ms, axis: ms },
      ]);
      timeChart(cpuChart, "cpu", "", s.t, [{ label: "CPU (cores)", values: s.cpu, fmt: (v) => num(v, 2) }]);
      replace(workersBox, d.workers.length
        ? table(["worker", "state", "restarts", "CPU", "RSS", "requests", "req/s", "p95", "host"],
          d.workers.map((w) => [w.worker, badge(w.state), num(w.restarts, 0), num(w.cpu, 2), bytes(w.rss),
            num(w.requests_total, 0), num(w.rps), ms(w.p95), w.host ? hostLink(w.host) : "–"]), [2, 3, 4, 5, 6, 7])
        : h("p", { class: "muted" }, "no workers reporting"));
      replace(eventsBox, d.events.length ? eventsTable(d.events) : h("p", { class: "muted" }, "no events for this pool"));
    }, POLL_MS);
  }

  function hostPage(root) {
    const id = pathAfter("/hosts/");
    const title = h("h1", {}, "Host ", id);
    const tiles = h("div", { class: "tiles" });
    const cpuChart = h("div", { class: "chart" });
    const netChart = h("div", { class: "chart" });
    const diskChart = h("div", { class: "chart" });
    const vmsBox = h("div", {});
    const workersBox = h("div", {});
    const eventsBox = h("div", {});
    replace(root, title, tiles,
      h("div", { class: "grid" }, panel("CPU and memory", cpuChart), panel("Network", netChart), panel("Disk", diskChart)),
      h("div", { class: "grid" }, panel("VMs", vmsBox), panel("Workers", workersBox)),
      panel("Events", eventsBox));
    document.title = "Host " + id + " · loadpilot";

    live(async () => {
      const d = await api("/dash/hosts/" + idPath(id), { window_s: windowParam() });
      replace(title, "Host ", d.name || d.id);
      const l = d.latest;
      replace(tiles, tile("CPU", pct(l["cpu.util"])), tile("memory", pct(l["mem.util"])), tile("memory used", bytes(l["mem.used_bytes"])),
        tile("VMs", String(d.vms.length)), tile("workers", String(d.workers.length)));
      const s = d.series;
      timeChart(cpuChart, "cpu", "", s.t, [
        { label: "CPU", values: s["cpu.util"], fmt: pct, axis: pct },
        { label: "memory", values: s["mem.util"], fmt: pct },
      ]);
      timeChart(netChart, "net", "", s.t, [
        { label: "rx", values: s["net.rx_bytes_per_s"], fmt: (v) => bytes(v) + "/s", axis: bytes },
        { label: "tx", values: s["net.tx_bytes_per_s"], fmt: (v) => bytes(v) + "/s" },
      ]);
      timeChart(diskChart, "disk", "", s.t, [
        { label: "read", values: s["disk.read_bytes_per_s"], fmt: (v) => bytes(v) + "/s", axis: bytes },
        { label: "write", values: s["disk.write_bytes_per_s"], fmt: (v) => bytes(v) + "/s" },
      ]);
      replace(vmsBox, d.vms.length
        ? table(["VM", "CPU", "memory"], d.vms.map((v) => [v.name || v.id, bar(v.cpu), bar(v.mem)]))
        : h("p", { class: "muted" }, "no VMs on this host"));
      replace(workersBox, d.workers.length
        ? table(["pool", "worker", "CPU", "RSS"], d.workers.map((w) => [poolLink(w.pool), w.worker, num(w.cpu, 2), bytes(w.rss)]), [2, 3])
        : h("p", { class: "muted" }, "no pool workers on this host"));
      replace(eventsBox, d.events.length ? eventsTable(d.events) : h("p", { class: "muted" }, "no events for this host"));
    }, POLL_MS);
  }

  function eventsPage(root) {
    const params = new URLSearchParams(location.search);
    const kind = h("input", { name: "kind", placeholder: "kind (scale, hold, migrate…)", value: params.get("kind") || "" });
    const subject = h("input", { name: "subject", placeholder: "subject (pool/web…)", value: params.get("subject") || "" });
    const text = h("input", { type: "search", placeholder: "search reason, result", "aria-label": "search" });
    const chartBox = h("div", { class: "chart" });
    const body = h("tbody", {});
    const count = h("p", { class: "note" });
    replace(root,
      h("h1", {}, "Events"),
      h("form", { class: "filters", method: "get", action: "/events" }, kind, subject, h("button", { type: "submit" }, "Filter"), text),
      panel("Events per minute", chartBox),
      panel(null, h("div", { class: "scroll" }, h("table", { class: "events" },
        h("thead", {}, h("tr", {}, ["time", "kind", "subject", "result", "reason", h("span", { class: "hide-narrow" }, "inputs")].map((x) => h("th", {}, x)))),
        body)), count));
    const events = [];
    let maxId = null;

    function matches(e) {
      const q = text.value.trim().toLowerCase();
      return !q || (e.reason + " " + e.result + " " + e.subject + " " + e.kind).toLowerCase().includes(q);
    }

    function draw(fresh) {
      const shown = events.filter(matches);
      const freshIds = new Set(fresh.map((e) => e.id));
      replace(body, shown.slice(0, 500).map((e) => eventRow(e, freshIds.has(e.id))));
      replace(count, shown.length + " of " + events.length + " events loaded" + (events.length >= 1000 ? " (the newest 1,000)" : ""));
      drawRate();
    }

    function drawRate() {
      const now = Date.now() / 1000;
      const start = Math.floor(now / 60) * 60 - 59 * 60;
      const t = Array.from({ length: 60 }, (_, i) => start + i * 60);
      const ok = new Array(60).fill(0);
      const bad = new Array(60).fill(0);
      for (const e of events) {
        const i = Math.floor((e.time - start) / 60);
        if (i < 0 || i >= 60) continue;
        if (resultClass(e.result) === "bad") bad[i]++; else ok[i]++;
      }
      timeChart(chartBox, "rate", "", t, [
        { label: "ok / kept / other", values: ok, fmt: (v) => num(v, 0), ints: true },
        { label: "failed / refused / error", values: bad, color: "#d64545", fmt: (v) => num(v, 0) },
      ], 150);
    }

    text.addEventListener("input", () => draw([]));
    live(async () => {
      const query = { kind: kind.value.trim(), subject: subject.value.trim() };
      const got = maxId == null
        ? await api("/events", { ...query, limit: 1000 })
        : await api("/events", { ...query, after_id: maxId, limit: 1000 });
      const known = new Set(events.map((e) => e.id));
      const added = got.filter((e) => !known.has(e.id));
      const fresh = maxId == null ? [] : added;
      for (const e of got) maxId = Math.max(maxId ?? 0, e.id);
      if (maxId == null) maxId = 0;
      events.unshift(...added);
      events.sort((a, b) => b.time - a.time || b.id - a.id);
      events.length = Math.min(events.length, 1000);
      draw(fresh);
    }, EVENTS_POLL_MS);
  }

  function coordinationPage(root) {
    const head = h("div", {});
    const membersBox = h("div", {});
    const sharesBox = h("div", {});
    replace(root, h("h1", {}, "Coordination"), head,
      h("div", { class: "grid" }, panel("Members", membersBox), panel("Partition shares", sharesBox)));
    live(async () => {
      const d = await api("/dash/coordination");
      const leader = d.leader;
      replace(head, h("div", { class: "tiles" },
        tile("backend", d.backend + " · " + d.namespace),
        tile("leader", leader ? leader.member : "none"),
        tile("epoch", String(leader ? leader.epoch : d.last_epoch)),
        tile("lease left", leader ? num(leader.lease_left_s) + " s" : "–"),
        tile("members alive", d.members.filter((m) => m.alive).length + " / " + d.members.length)));
      replace(membersBox, d.members.length
        ? table(["role", "member", "kind", "alive", "heartbeat", "owned", "polling", "view"],
          d.members.map((m) => [m.role, m.id, m.kind, badge(m.alive ? "ok" : "gone"),
            m.last_heartbeat_age_s == null ? "–" : num(m.last_heartbeat_age_s) + " s ago",
            m.role === "agents" ? String(m.owned) : "", m.role === "agents" ? String(m.polling) : "",
            m.role === "agents" ? String(m.view || "").slice(0, 8) + (m.draining ? " draining" : "") : ""]), [5, 6])
        : h("p", { class: "muted" }, "no members"));
      const shares = Object.entries(d.shares || {});
      replace(sharesBox, shares.length
        ? table(["agent", "share"], shares.map(([member, share]) => [member, bar(share)]))
        : h("p", { class: "muted" }, "no shared resources are partitioned"));
    }, POLL_MS);
  }

  const PAGES = { overview: overviewPage, pool: poolPage, host: hostPage, events: eventsPage, coordination: coordinationPage };

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    const link = document.querySelector('header nav a[data-page="' + page + '"]');
    if (link) link.classList.add("current");
    PAGES[page](document.getElementById("page"));
  });
})();
