// Metric charts: one metric of 1..N runs (or of groups of runs) over step, wall time or relative time, drawn by
// uPlot from proj's metrics/sampled. The server cuts the range into buckets and keeps each bucket's min and max,
// so a spike survives at any zoom; zooming (drag) refetches that window with as many points as the chart is wide.
//
//   const chart = metricChart(el, {runIds, key, x: "step", smoothing: 0, log: false, groups: null, height: 260});
//   chart.setX("wall"); chart.setSmoothing(0.6); chart.setLog(true); chart.zoom(100, 200); chart.destroy();
// Options also take `band: "minmax"|"std"` (groups) and `names: {runId: name}` (else each run's name is read with
// runs/get, once per page). Drawing into an element that has a chart replaces it.
//
// What the chart drew is on the element for tests and tools: data-points (points drawn), data-series (legend
// entries), data-ymin/data-ymax (the extremes drawn), data-line-ymax (the extreme of the lines, smoothed or not),
// data-xmin/data-xmax, data-zoomed, data-ready="1" after each draw.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import {mlflowGet, projGet} from "./api.js";
import {duration, h, mount, number, when} from "./dom.js";

// Two variants of one palette: saturated enough on white, light enough on the dark background.
const PALETTE = {
  light: ["#1f6fc5", "#d62728", "#2a9d3a", "#8e55c9", "#e07000", "#0f9fb0", "#8c564b", "#d63d9e", "#5f6b7a", "#8a8a00"],
  dark: ["#6aaeff", "#ff6b6b", "#52d37f", "#c39bff", "#ffa64d", "#3fd8e8", "#d9a57a", "#ff8fd0", "#b8c0cc", "#d6d65c"],
};
const X_LABELS = {step: "Step", wall: "Wall time", relative: "Relative time"};
const TABLE_ROWS = 50;
const names = new Map(); // run id -> run name, shared by every chart on the page

/** A palette colour for the i-th series in the current theme. */
export function seriesColor(i, theme = currentTheme()) {
  const colors = PALETTE[theme] || PALETTE.light;
  return colors[i % colors.length];
}

function currentTheme() {
  return document.documentElement.dataset.theme === "dark" ? "dark" : "light";
}

/** A metric value from the JSON: numbers stay, "NaN"/"Infinity"/"-Infinity" (and anything else) become gaps. */
function finite(value, log) {
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  if (log && value <= 0) return null; // no place on a log axis
  return value;
}

/** TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled to 0. */
export function ema(ys, weight) {
  if (!weight) return ys;
  const out = new Array(ys.length);
  let last = 0, count = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (v === null || v === undefined) { out[i] = v; continue; }
    last = last * weight + (1 - weight) * v;
    count++;
    out[i] = last / (1 - Math.pow(weight, count));
  }
  return out;
}

/** Each member's value at every x of the union of their xs (linear between its own points; null outside its
 * range or across its gaps), reduced to mean and a band (min..max, or mean +- std) per x. */
export function aggregate(members, band = "minmax") {
  const set = new Set();
  for (const m of members) for (let i = 0; i < m.x.length; i++) if (m.y[i] !== null) set.add(m.x[i]);
  const xs = Float64Array.from(set).sort();
  const n = xs.length;
  const sum = new Float64Array(n), sq = new Float64Array(n), cnt = new Uint32Array(n);
  const lo = new Array(n).fill(null), hi = new Array(n).fill(null);
  for (const m of members) {
    let j = 0;
    for (let k = 0; k < n; k++) {
      const xq = xs[k];
      while (j + 1 < m.x.length && m.x[j + 1] <= xq) j++;
      let v = null;
      if (m.x.length && m.x[j] === xq) v = m.y[j];
      else if (j + 1 < m.x.length && m.x[j] < xq && m.y[j] !== null && m.y[j + 1] !== null) {
        const t = (xq - m.x[j]) / (m.x[j + 1] - m.x[j]);
        v = m.y[j] + t * (m.y[j + 1] - m.y[j]);
      }
      if (v === null) continue;
      sum[k] += v; sq[k] += v * v; cnt[k]++;
      if (lo[k] === null || v < lo[k]) lo[k] = v;
      if (hi[k] === null || v > hi[k]) hi[k] = v;
    }
  }
  const mean = new Array(n).fill(null);
  for (let k = 0; k < n; k++) {
    if (!cnt[k]) { lo[k] = hi[k] = null; continue; }
    mean[k] = sum[k] / cnt[k];
    if (band === "std") {
      const std = Math.sqrt(Math.max(0, sq[k] / cnt[k] - mean[k] * mean[k]));
      lo[k] = mean[k] - std; hi[k] = mean[k] + std;
    }
  }
  return {x: Array.from(xs), mean, lo, hi};
}

async function runNames(ids, given) {
  if (given) for (const [id, name] of Object.entries(given)) names.set(id, name);
  const missing = ids.filter((id) => !names.has(id));
  await Promise.all(missing.map(async (id) => {
    try {
      const data = await mlflowGet("runs/get", {run_id: id});
      names.set(id, data.run?.info?.run_name || id.slice(0, 8));
    } catch {
      names.set(id, id.slice(0, 8)); // a run we cannot read is still drawn, by its id
    }
  }));
  return ids.map((id) => names.get(id));
}

function listNames(labels) {
  return labels.length <= 8 ? labels.join(", ") : `${labels.slice(0, 8).join(", ")} and ${labels.length - 8} more`;
}

/** A chart of metric `key` for `runIds` (or `groups`: [{label, runIds}]) in `el`, with its own toolbar. */
export function metricChart(el, {runIds = [], key, x = "step", smoothing = 0, log = false, groups = null,
                                 height = 260, band = "minmax", names: given = null} = {}) {
  el.projChart?.destroy(); // a chart drawn again into the same element replaces the old one (and its listeners)
  const state = {x, smoothing: Number(smoothing) || 0, log: !!log, band, range: null, series: null, labels: null,
                 token: 0, plot: null, entries: [], width: 0, destroyed: false};
  const allIds = groups ? [...new Set(groups.flatMap((g) => g.runIds))] : [...new Set(runIds)];

  const xSelect = h("select", {"aria-label": "X axis", onchange: () => api.setX(xSelect.value)},
                    Object.entries(X_LABELS).map(([v, label]) => h("option", {value: v}, label)));
  const smoothOut = h("output", {class: "chart-smooth-value"});
  const smoothInput = h("input", {type: "range", min: "0", max: "0.99", step: "0.01", "aria-label": "Smoothing",
                                  oninput: () => api.setSmoothing(Number(smoothInput.value))});
  const logBox = h("input", {type: "checkbox", onchange: () => api.setLog(logBox.checked)});
  const bandSelect = groups ? h("select", {"aria-label": "Band", onchange: () => { state.band = bandSelect.value; draw(); }},
                                h("option", {value: "minmax"}, "min–max band"), h("option", {value: "std"}, "± std band")) : null;
  const resetButton = h("button", {type: "button", class: "chart-reset", disabled: true, onclick: () => api.resetZoom()},
                        "Reset zoom");
  const toolbar = h("div", {class: "chart-toolbar toolbar"},
                    h("label", {}, "x ", xSelect),
                    h("label", {class: "chart-smooth"}, "smoothing ", smoothInput, smoothOut),
                    h("label", {}, logBox, " log scale"),
                    bandSelect, resetButton);
  const plotBox = h("div", {class: "chart-plot", role: "img"});
  const legend = h("ul", {class: "chart-legend", "aria-label": "Legend"});
  const message = h("p", {class: "chart-message muted", hidden: true});
  const tableBox = h("details", {class: "chart-table"});
  el.classList.add("metric-chart");
  el.dataset.ready = "0";
  mount(el, h("div", {class: "chart-title"}, key), toolbar, message, plotBox, legend, tableBox);

  function syncControls() {
    xSelect.value = state.x;
    smoothInput.value = String(state.smoothing);
    smoothOut.textContent = state.smoothing.toFixed(2);
    logBox.checked = state.log;
    if (bandSelect) bandSelect.value = state.band;
    resetButton.disabled = !state.range;
    el.dataset.zoomed = state.range ? "1" : "0";
    el.dataset.x = state.x;
    el.dataset.smoothing = String(state.smoothing);
    el.dataset.log = state.log ? "1" : "0";
  }

  function plotWidth() {
    return Math.max(200, Math.floor(plotBox.clientWidth || el.clientWidth || 600));
  }

  async function load() {
    const token = ++state.token;
    el.dataset.ready = "0";
    const width = plotWidth();
    const params = {run_ids: allIds.join(","), metric_key: key, x: state.x, points: width};
    if (state.range) { params.x_min = state.range[0]; params.x_max = state.range[1]; }
    try {
      const [data, labels] = await Promise.all([projGet("metrics/sampled", params), runNames(allIds, given)]);
      if (token !== state.token || state.destroyed) return;
      state.series = data.series || [];
      state.labels = new Map(allIds.map((id, i) => [id, labels[i]]));
      draw();
    } catch (err) {
      if (token !== state.token || state.destroyed) return;
      destroyPlot();
      message.hidden = false;
      message.textContent = `Cannot load ${key}: ${err.message || err}`;
      el.dataset.error = message.textContent;
      el.dataset.ready = "1";
    }
  }

  /** The entries to draw: per run (raw, and smoothed when asked) or per group (band low, band high, mean). */
  function entries() {
    const byRun = new Map(state.series.map((s) => [s.run_id, s]));
    const parse = (s) => ({x: s.x, y: s.y.map((v) => finite(v, state.log))});
    const out = [];
    if (groups) {
      groups.forEach((g, i) => {
        const members = g.runIds.map((id) => byRun.get(id)).filter(Boolean).map(parse);
        const agg = aggregate(members, state.band);
        out.push({label: g.label, color: seriesColor(i), x: agg.x, mean: ema(agg.mean, state.smoothing),
                  lo: agg.lo, hi: agg.hi, count: members.length});
      });
    } else {
      allIds.forEach((id, i) => {
        const s = byRun.get(id);
        if (!s) return;
        const p = parse(s);
        out.push({label: state.labels.get(id) || id, runId: id, color: seriesColor(i), x: p.x, raw: p.y,
                  smooth: state.smoothing ? ema(p.y, state.smoothing) : null, total: s.total, sampled: s.sampled});
      });
    }
    return out;
  }

  /** uPlot's aligned data and series options for the entries (one x column; each table joined on it). */
  function layout(list) {
    const tables = [], series = [{label: X_LABELS[state.x]}], bands = [], modes = [];
    for (const e of list) {
      const first = series.length;
      e.index = [];
      if (groups) {
        tables.push([e.x, e.lo, e.hi, e.mean]);
        series.push({label: `${e.label} low`, stroke: e.color + "55", width: 1, points: {show: false}},
                    {label: `${e.label} high`, stroke: e.color + "55", width: 1, points: {show: false}},
                    {label: e.label, stroke: e.color, width: 2, points: {show: false}});
        bands.push({series: [first + 1, first], fill: e.color + "33"});
        e.index = [first, first + 1, first + 2];
        e.main = first + 2;
        modes.push([1, 1, 1, 1]);
      } else if (e.smooth) {
        tables.push([e.x, e.raw, e.smooth]);
        series.push({label: `${e.label} (raw)`, stroke: e.color + "44", width: 1},
                    {label: e.label, stroke: e.color, width: 1.75});
        e.index = [first, first + 1];
        e.main = first + 1;
        modes.push([1, 1, 1]);
      } else {
        tables.push([e.x, e.raw]);
        series.push({label: e.label, stroke: e.color, width: 1.5});
        e.index = [first];
        e.main = first;
        modes.push([1, 1]);
      }
    }
    // one table is drawn as it is (repeated x values stay: a step logged twice keeps both values)
    const data = tables.length === 1 ? tables[0] : tables.length ? uPlot.join(tables, modes) : [[]];
    for (const s of series.slice(1)) s.spanGaps = false;
    return {data, series, bands};
  }

  function extremes(data, list) {
    let ymin = Infinity, ymax = -Infinity, lineMax = -Infinity, lineMin = Infinity, points = 0;
    const mains = new Set(list.map((e) => e.main));
    const counted = new Set(list.map((e) => (groups ? e.main : e.index[0])));
    for (let si = 1; si < data.length; si++) {
      const col = data[si];
      for (let i = 0; i < col.length; i++) {
        const v = col[i];
        if (v === null || v === undefined) continue;
        if (v < ymin) ymin = v;
        if (v > ymax) ymax = v;
        if (mains.has(si)) { if (v > lineMax) lineMax = v; if (v < lineMin) lineMin = v; }
        if (counted.has(si)) points++;
      }
    }
    return {ymin, ymax, lineMin, lineMax, points};
  }

  function axisStyle() {
    const css = getComputedStyle(el);
    const fg = css.getPropertyValue("--muted").trim() || "#5f6b7a";
    const grid = css.getPropertyValue("--border").trim() || "#d9dde3";
    return {stroke: fg, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1}};
  }

  /** The x axis's tick labels (also kept in data-xticks: the axes are drawn on the canvas, out of the DOM). */
  function xValues() {
    const keep = (labels) => { el.dataset.xticks = labels.join("|"); return labels; };
    if (state.x === "relative") return (u, splits) => keep(splits.map((v) => duration(v)));
    if (state.x === "step") return (u, splits) => keep(splits.map((v) => number(v)));
    delete el.dataset.xticks;
    return undefined; // wall: uPlot's own time axis (its labels adapt to the span: dates, hours, seconds)
  }

  function destroyPlot() {
    if (state.plot) { state.plot.destroy(); state.plot = null; }
  }

  function draw() {
    if (state.destroyed || !state.series) return;
    el.dataset.ready = "0";
    syncControls();
    destroyPlot();
    const list = entries();
    state.entries = list;
    const {data, series, bands} = layout(list);
    const ext = extremes(data, list);
    const labels = list.map((e) => e.label);
    plotBox.setAttribute("aria-label", `Chart of ${key} by ${X_LABELS[state.x].toLowerCase()} for ` +
                         `${groups ? "groups " : ""}${listNames(labels)}` +
                         (ext.points ? `: ${number(ext.ymin)} to ${number(ext.ymax)}` : ": no values"));
    Object.assign(el.dataset, {points: String(ext.points), series: String(list.length),
                               ymin: ext.points ? String(ext.ymin) : "", ymax: ext.points ? String(ext.ymax) : "",
                               lineYmax: ext.points ? String(ext.lineMax) : "",
                               lineYmin: ext.points ? String(ext.lineMin) : ""});
    const xs = data[0] || [];
    el.dataset.xmin = xs.length ? String(xs[0]) : "";
    el.dataset.xmax = xs.length ? String(xs[xs.length - 1]) : "";
    delete el.dataset.error;
    message.hidden = ext.points > 0;
    message.textContent = ext.points ? "" : `No values of ${key}${state.range ? " in this window" : ""}` +
                                            `${state.log ? " above 0 (log scale)" : ""}.`;
    renderLegend(list);
    renderTable(data, series);
    if (!ext.points) { el.dataset.ready = "1"; return; } // the message says why; an empty uPlot has no scale
    const style = axisStyle();
    state.width = plotWidth();
    const opts = {
      width: state.width, height, ms: 1, series, bands,
      legend: {show: false},
      focus: {alpha: 0.35},
      cursor: {drag: {x: true, y: false, setScale: false}, focus: {prox: 24}},
      scales: {
        x: {time: state.x === "wall", range: (u, lo, hi) => (state.range ? [state.range[0], state.range[1]] : [lo, hi])},
        y: state.log ? {distr: 3, log: 10} : {},
      },
      axes: [{...style, values: xValues(), space: 70},
             {...style, size: 64, values: state.log ? undefined : (u, splits) => splits.map((v) => number(v))}],
      hooks: {setSelect: [onSelect], setCursor: [onCursor], setSeries: [onFocus],
              draw: [() => { el.dataset.ready = "1"; }]}, // painted (uPlot paints in a microtask)
    };
    state.plot = new uPlot(opts, data, plotBox);
    state.plot.over.addEventListener("dblclick", () => { if (state.range) api.resetZoom(); });
  }

  function onSelect(u) {
    const {left, width} = u.select;
    if (width < 4) return;
    let lo = u.posToVal(left, "x"), hi = u.posToVal(left + width, "x");
    u.setSelect({left: 0, top: 0, width: 0, height: 0}, false);
    api.zoom(lo, hi);
  }

  function onCursor(u) {
    const idx = u.cursor.idx;
    for (const e of state.entries) {
      const v = idx === null || idx === undefined ? null : u.data[e.main][idx];
      if (e.valueEl) e.valueEl.textContent = v === null || v === undefined ? "" : number(v);
    }
    if (xLabelEl) {
      const xv = idx === null || idx === undefined ? null : u.data[0][idx];
      xLabelEl.textContent = xv === null || xv === undefined ? "" : `${X_LABELS[state.x]}: ${formatX(xv)}`;
    }
  }

  function onFocus(u, si) {
    for (const e of state.entries) e.item?.classList.toggle("focused", si !== null && e.index.includes(si));
  }

  let xLabelEl = null;
  function renderLegend(list) {
    xLabelEl = h("li", {class: "chart-legend-x muted"});
    mount(legend, list.map((e) => {
      e.valueEl = h("span", {class: "value"});
      const name = e.runId ? h("a", {href: `#/runs/${encodeURIComponent(e.runId)}`}, e.label) : h("span", {}, e.label);
      const toggle = h("button", {type: "button", class: "swatch", style: {background: e.color},
                                  "aria-pressed": "true", "aria-label": `Show or hide ${e.label}`,
                                  title: "Show or hide"});
      toggle.addEventListener("click", () => {
        const show = toggle.getAttribute("aria-pressed") !== "true";
        toggle.setAttribute("aria-pressed", String(show));
        e.item.classList.toggle("hidden", !show);
        for (const si of e.index) state.plot?.setSeries(si, {show});
      });
      const extra = groups ? h("span", {class: "muted"}, ` (${e.count} run${e.count === 1 ? "" : "s"})`)
        : e.sampled ? h("span", {class: "muted", title: "points in range; the chart shows each bucket's min and max"},
                        ` (${Number(e.total).toLocaleString("en-US")} pts)`) : null;
      e.item = h("li", {class: "chart-legend-item", dataset: {label: e.label}}, toggle, name, extra, " ", e.valueEl);
      return e.item;
    }), xLabelEl);
  }

  function formatX(v) {
    if (state.x === "wall") return when(v);
    if (state.x === "relative") return duration(v);
    return number(v);
  }

  function renderTable(data, series) {
    const rows = Math.min(TABLE_ROWS, data[0]?.length || 0);
    const cols = series.map((s) => s.label);
    const body = [];
    for (let i = 0; i < rows; i++) {
      body.push(h("tr", {}, data.map((col, c) => (c === 0 ? h("th", {scope: "row"}, formatX(col[i]))
        : h("td", {class: "num"}, col[i] === null || col[i] === undefined ? "" : number(col[i]))))));
    }
    mount(tableBox, h("summary", {}, `Data table (first ${rows} of ${data[0]?.length || 0} rows)`),
          h("table", {class: "grid"}, h("thead", {}, h("tr", {}, cols.map((c) => h("th", {scope: "col"}, c)))),
            h("tbody", {}, body)));
  }

  const onTheme = () => { // entries() picks the new theme's colours; a chart taken out of the page lets go
    if (el.isConnected) draw(); else api.destroy();
  };
  window.addEventListener("proj-theme", onTheme);

  const resize = new ResizeObserver(() => {
    const width = plotWidth();
    if (state.plot && Math.abs(width - state.width) > 2) {
      state.width = width;
      state.plot.setSize({width, height});
    }
  });
  resize.observe(plotBox);

  const api = {
    setX(value) {
      if (!X_LABELS[value]) throw new Error(`x must be one of ${Object.keys(X_LABELS).join(", ")}: ${value}`);
      state.x = value; state.range = null; syncControls(); return load();
    },
    setSmoothing(value) { state.smoothing = Math.min(0.99, Math.max(0, Number(value) || 0)); draw(); syncControls(); },
    setLog(value) { state.log = !!value; draw(); syncControls(); },
    zoom(lo, hi) {
      if (!(hi > lo)) return Promise.resolve();
      if (state.x === "step" || state.x === "wall") { lo = Math.floor(lo); hi = Math.ceil(hi); }
      state.range = [lo, hi]; syncControls(); return load();
    },
    resetZoom() { state.range = null; syncControls(); return load(); },
    reload: () => load(),
    destroy() {
      state.destroyed = true;
      state.token++;
      window.removeEventListener("proj-theme", onTheme);
      resize.disconnect();
      destroyPlot();
      if (el.projChart === api) delete el.projChart;
    },
  };
  el.projChart = api;
  syncControls();
  load();
  return api;
}
