// #/compare?runs=a,b,c: 2..N runs side by side (params, metrics, tags, environment; differing rows highlighted),
// one metric overlaid for all of them, parallel coordinates and a scatter of any two columns.
// The view is in the URL: only=1 (only differences), metric=<key>, axes=<col>,<col>, sx=<col>, sy=<col>.
import {projGet} from "../api.js";
import {link} from "../app.js";
import {metricChart, seriesColor} from "../chart.js";
import {h, mount, number, status} from "../dom.js";
import {highlight, parallelCoordinates} from "../parallel.js";
import {scatterPlot} from "../scatter.js";

const SECTIONS = [["params", "Parameters"], ["metrics", "Metrics (latest)"], ["tags", "Tags"], ["env", "Environment"]];

export async function render(main, route) {
  const ids = (route.params.get("runs") || "").split(",").map((s) => s.trim()).filter(Boolean);
  if (ids.length < 2) {
    mount(main, h("h1", {}, "Compare runs"),
          h("p", {}, "Choose two or more runs to compare: select them in a runs table and press Compare."));
    return;
  }
  const data = await projGet("runs/compare", {run_ids: ids.join(",")});
  const runs = data.runs.map((r, i) => ({id: r.run_id, label: r.run_name || r.run_id.slice(0, 8), color: seriesColor(i), info: r}));
  const only = h("input", {type: "checkbox", id: "compare-only", checked: route.params.get("only") === "1"});
  const tables = h("div", {class: "compare-tables"});
  const setOnly = () => {
    tables.classList.toggle("only-diff", only.checked);
    route.update({only: only.checked ? "1" : null});
  };
  only.addEventListener("change", setOnly);

  const differing = SECTIONS.reduce((n, [k]) => n + (data[k] || []).filter((r) => r.differs).length, 0);
  const total = SECTIONS.reduce((n, [k]) => n + (data[k] || []).length, 0);
  for (const [key, title] of SECTIONS) tables.append(section(key, title, data[key] || [], runs));
  tables.classList.toggle("only-diff", only.checked);

  const columns = plotColumns(data);
  const recolor = () => { // the theme's palette for the run swatches (the plots redraw themselves)
    runs.forEach((r, i) => { r.color = seriesColor(i); });
    for (const s of main.querySelectorAll(".swatch[data-i]")) s.style.background = runs[Number(s.dataset.i)].color;
  };
  window.addEventListener("proj-theme", recolor);
  const cleanups = [() => window.removeEventListener("proj-theme", recolor)];
  mount(main,
        h("h1", {}, `Compare ${runs.length} runs`),
        h("div", {class: "compare-runs", role: "list", "aria-label": "Runs compared"},
          runs.map((r, i) => h("span", {class: "compare-run", role: "listitem"},
                               h("span", {class: "swatch", style: {background: r.color}, dataset: {i}}),
                            h("a", {href: link(`runs/${r.id}`)}, r.label), " ", status(r.info.status)))),
        h("div", {class: "toolbar"},
          h("label", {for: "compare-only"}, only, " Show only differences"),
          h("span", {class: "muted"}, `${differing} of ${total} rows differ`)),
        tables,
        chartSection(data, runs, route, cleanups),
        parallelSection(columns, runs, route, cleanups),
        scatterSection(columns, runs, route, cleanups));
  return () => { for (const fn of cleanups) fn(); };
}

/** One table of a section: rows = keys, columns = runs; a differing row has class "diff". */
function section(key, title, rows, runs) {
  if (rows.every((r) => r.values.every((v) => v === null || v === undefined))) rows = []; // e.g. env of client runs
  const head = h("tr", {}, h("th", {scope: "col"}, key === "env" ? "Package / field" : "Key"),
                 runs.map((r) => h("th", {scope: "col"}, h("a", {href: link(`runs/${r.id}`)}, r.label))));
  const body = rows.map((row) => {
    const name = row.key ?? row.name;
    return h("tr", {class: row.differs ? "diff" : "same", dataset: {key: name}},
             h("th", {scope: "row"}, name),
             row.values.map((v) => cell(key, name, v)));
  });
  const count = rows.filter((r) => r.differs).length;
  return h("section", {class: `compare-section compare-${key}${count ? "" : " no-diff"}`, "aria-label": title},
           h("h2", {}, title, " ", h("span", {class: "muted"}, rows.length ? `(${count} of ${rows.length} differ)` : "")),
           rows.length ? h("div", {class: "compare-scroll"}, h("table", {class: "grid compare-table"}, h("thead", {}, head), h("tbody", {}, body)))
             : h("p", {class: "muted"}, key === "env" ? "No environment recorded (runs not made by proj run)." : "None."));
}

function cell(section, name, value) {
  if (value === null || value === undefined) return h("td", {class: "absent muted"}, "—");
  if (section === "metrics") return h("td", {class: "num"}, number(value));
  let text = String(value);
  if (section === "env" && name === "lock_digest" && text.length > 16) {
    return h("td", {class: "mono", title: text}, text.replace(/^sha256:/, "").slice(0, 12) + "…");
  }
  return h("td", {class: section === "env" ? "mono" : null, title: text.length > 60 ? text : null},
           text.length > 200 ? text.slice(0, 200) + "…" : text);
}

/** The columns the plots can use: every param and metric ("params.alpha", "metrics.loss"), with its values. */
function plotColumns(data) {
  const cols = [];
  for (const row of data.params || []) cols.push({key: `params.${row.key}`, label: row.key, values: row.values, differs: row.differs});
  for (const row of data.metrics || []) cols.push({key: `metrics.${row.key}`, label: row.key, values: row.values, differs: row.differs});
  return cols;
}

function chartSection(data, runs, route, cleanups) {
  const keys = (data.metrics || []).map((m) => m.key);
  const box = h("div", {class: "compare-chart"});
  const wrap = h("section", {class: "compare-plot", "aria-label": "Metric chart"}, h("h2", {}, "Metric over time"));
  if (!keys.length) { wrap.append(h("p", {class: "muted"}, "These runs logged no metrics.")); return wrap; }
  let chart = null;
  const wanted = route.params.get("metric");
  const select = h("select", {"aria-label": "Metric", class: "compare-metric"},
                   keys.map((k) => h("option", {value: k, selected: k === wanted}, k)));
  const names = Object.fromEntries(runs.map((r) => [r.id, r.label]));
  const show = () => {
    chart?.destroy();
    route.update({metric: select.value === keys[0] ? null : select.value});
    chart = metricChart(box, {runIds: runs.map((r) => r.id), key: select.value, names});
  };
  select.addEventListener("change", show);
  cleanups.push(() => chart?.destroy());
  wrap.append(h("div", {class: "toolbar"}, h("label", {}, "metric ", select)), box);
  queueMicrotask(show); // after the section is in the page, so the chart knows its width
  return wrap;
}

function parallelSection(columns, runs, route, cleanups) {
  const wrap = h("section", {class: "compare-plot", "aria-label": "Parallel coordinates"}, h("h2", {}, "Parallel coordinates"));
  if (columns.length < 2) { wrap.append(h("p", {class: "muted"}, "Needs two or more params or metrics.")); return wrap; }
  const asked = (route.params.get("axes") || "").split(",").filter((k) => columns.some((c) => c.key === k));
  const initial = asked.length ? asked : defaultAxes(columns);
  const box = h("div", {class: "compare-parallel"});
  const boxes = columns.map((c) => h("input", {type: "checkbox", value: c.key, checked: initial.includes(c.key)}));
  const draw = () => {
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
    route.update({axes: chosen.join(",") === defaultAxes(columns).join(",") ? null : chosen.join(",")});
    parallelCoordinates(box, {columns: columns.filter((c) => chosen.includes(c.key)), runs});
  };
  for (const b of boxes) b.addEventListener("change", draw);
  const picker = h("details", {class: "compare-axes"}, h("summary", {}, "Axes"),
                   h("div", {class: "compare-axes-list"}, columns.map((c, i) => h("label", {}, boxes[i], " ", c.key))));
  wrap.append(picker, box, legend(runs, box));
  queueMicrotask(draw);
  const redraw = () => draw(); // after render's recolor (registered first)
  window.addEventListener("proj-theme", redraw);
  cleanups.push(() => window.removeEventListener("proj-theme", redraw));
  return wrap;
}

/** Parallel axes to start with: the differing params, then the metrics (at most 8 in all). */
function defaultAxes(columns) {
  const params = columns.filter((c) => c.key.startsWith("params.") && c.differs);
  const metrics = columns.filter((c) => c.key.startsWith("metrics."));
  const chosen = [...params, ...metrics].slice(0, 8);
  return (chosen.length >= 2 ? chosen : columns.slice(0, 8)).map((c) => c.key);
}

function scatterSection(columns, runs, route, cleanups) {
  const wrap = h("section", {class: "compare-plot", "aria-label": "Scatter"}, h("h2", {}, "Scatter"));
  if (columns.length < 2) { wrap.append(h("p", {class: "muted"}, "Needs two or more params or metrics.")); return wrap; }
  const defaults = defaultAxes(columns);
  const pick = (name, fallback) => {
    const v = route.params.get(name);
    return columns.some((c) => c.key === v) ? v : fallback;
  };
  const options = (chosen) => columns.map((c) => h("option", {value: c.key, selected: c.key === chosen}, c.key));
  const xSel = h("select", {"aria-label": "Scatter x", class: "scatter-x"}, options(pick("sx", defaults[0])));
  const ySel = h("select", {"aria-label": "Scatter y", class: "scatter-y"}, options(pick("sy", defaults[defaults.length - 1])));
  const box = h("div", {class: "compare-scatter"});
  const draw = () => {
    route.update({sx: xSel.value, sy: ySel.value});
    const col = (k) => columns.find((c) => c.key === k);
    scatterPlot(box, {x: col(xSel.value), y: col(ySel.value), runs});
  };
  xSel.addEventListener("change", draw);
  ySel.addEventListener("change", draw);
  wrap.append(h("div", {class: "toolbar"}, h("label", {}, "x ", xSel), h("label", {}, "y ", ySel)), box);
  queueMicrotask(draw);
  const redraw = () => draw();
  window.addEventListener("proj-theme", redraw);
  cleanups.push(() => window.removeEventListener("proj-theme", redraw));
  return wrap;
}

/** Run names under a plot; hovering one highlights its line. */
function legend(runs, box) {
  return h("ul", {class: "chart-legend"}, runs.map((r, i) => {
    const item = h("li", {class: "chart-legend-item"}, h("span", {class: "swatch", style: {background: r.color}, dataset: {i}}),
                   h("a", {href: link(`runs/${r.id}`)}, r.label));
    item.addEventListener("mouseenter", () => { const s = box.querySelector("svg"); if (s) highlight(s, r.id); });
    item.addEventListener("mouseleave", () => { const s = box.querySelector("svg"); if (s) highlight(s, null); });
    return item;
  }));
}
