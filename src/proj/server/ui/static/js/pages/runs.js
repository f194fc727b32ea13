// The runs table of one or several experiments (#/experiments/1,2?cols=..&sort=..&filter=..&group=..&view=..):
// proj's runs/table a page at a time in a virtual grid (100,000 runs scroll with ~50 rows in the DOM), columns
// chosen from runs/keys and kept in the URL, sort by any header, MLflow's filter grammar with completion of
// keys, group by a param or tag (runs/groups: count and min/mean/max), child runs folded under their parent,
// CSV export, running rows polled in place, and the selection compared or charted.
import {h, mount, when, duration, number, status} from "../dom.js";
import {mlflowGet, projGet, projUrl} from "../api.js";
import {link, showError} from "../app.js";
import {virtualTable, fetchJson} from "../table.js";
import {filterBox} from "../filterbox.js";

const POLL_MS = 3000;
const ATTRIBUTES = [ // attribute columns come from each row's own fields (not asked of the server as columns)
  {id: "attributes.status", label: "Status", width: 100, sort: "attributes.status"},
  {id: "attributes.start_time", label: "Started", width: 170, sort: "attributes.start_time"},
  {id: "attributes.duration", label: "Duration", width: 90, num: true, sort: "attributes.duration"},
  {id: "attributes.end_time", label: "Ended", width: 170, sort: "attributes.end_time"},
  {id: "attributes.user", label: "User", width: 110, sort: "attributes.user_id"},
  {id: "attributes.run_id", label: "Run ID", width: 270, sort: "attributes.run_id"},
  {id: "attributes.experiment_id", label: "Experiment", width: 150},
];
const DEFAULT_ATTRIBUTES = ["attributes.status", "attributes.start_time", "attributes.duration"];
const VIEWS = [["ACTIVE_ONLY", "Active"], ["DELETED_ONLY", "Deleted"], ["ALL", "All"]];

/** The key as the filter grammar reads it: bare when it is a plain (dotted) word, else in backticks. */
export function quoteKey(key) {
  return /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/.test(key) ? key : `\`${key}\``;
}

/** A string literal of the grammar (it has no escapes: the quote the value does not hold). */
function quoteValue(value) { return value.includes("'") ? `"${value}"` : `'${value}'`; }

/** "metrics.loss:min" -> {kind: "metrics", key: "loss", agg: "min"}. */
export function parseColumn(id) {
  const dot = id.indexOf(".");
  const kind = id.slice(0, dot), rest = id.slice(dot + 1);
  const m = kind === "metrics" ? /^(.*):(min|max)$/.exec(rest) : null;
  return m ? {kind, key: m[1], agg: m[2]} : {kind, key: rest, agg: null};
}

function columnSpec(id, names) {
  const attr = ATTRIBUTES.find((a) => a.id === id);
  if (attr) return {...attr, sortable: Boolean(attr.sort), names};
  const {kind, key, agg} = parseColumn(id);
  const label = agg ? `${key} (${agg})` : key;
  return {id, label, title: id, kind, sort: id, sortable: true, num: kind === "metrics",
          width: Math.min(220, Math.max(kind === "metrics" ? 100 : 90, label.length * 8 + 28)), server: true};
}

function defaultColumns(keys) {
  return [...DEFAULT_ATTRIBUTES, ...keys.params.slice(0, 4).map((k) => `params.${k}`),
          ...keys.metrics.slice(0, 4).map((k) => `metrics.${k}`)];
}

function parseSort(text) {
  if (!text) return null;
  const m = /^(.*?)(?:\s+(ASC|DESC))?$/i.exec(text.trim());
  return {id: m[1], desc: (m[2] || "ASC").toUpperCase() === "DESC"};
}

export async function render(main, route) {
  const ids = route.args[0].split(",").map((s) => s.trim()).filter(Boolean);
  const p = route.params;
  const state = {
    ids, cols: p.get("cols") ? p.get("cols").split(",").filter(Boolean) : null,
    sort: parseSort(p.get("sort")), filter: p.get("filter") || "", group: p.get("group") || "",
    view: p.get("view") || "ACTIVE_ONLY", flat: p.get("flat") === "1",
    keys: {params: [], metrics: [], tags: []}, names: new Map(), selected: new Set(),
  };
  const tables = new Set();  // every live virtual table (the main one, or one per unfolded group)
  let timer = null;

  const title = h("h1", {}, ids.length > 1 ? `Runs of ${ids.length} experiments` : "Runs");
  const count = h("span", {class: "run-count muted", "aria-live": "polite"});
  const problem = h("p", {class: "filter-error", role: "alert", hidden: true});
  const holder = h("div", {class: "runs-holder"});
  const chooser = h("div", {class: "column-chooser", hidden: true, role: "dialog", "aria-label": "Choose columns"});
  const chartPanel = h("section", {class: "runs-chart", hidden: true, "aria-label": "Chart of the selected runs"});
  const selectionBar = h("div", {class: "toolbar selection", "aria-live": "polite"});
  const exportLink = h("a", {class: "export", download: "runs.csv"}, "Export CSV");

  const [, keys] = await Promise.all([loadNames(), projGet("runs/keys", {experiment_ids: ids.join(",")})
    .catch((err) => { showError(err.message); return {params: [], metrics: [], tags: []}; })]);
  state.keys = keys;
  if (!state.cols) state.cols = defaultColumns(keys);

  const filter = filterBox({value: state.filter, keys, onApply: (text) => { state.filter = text; route.update({filter: text}); rebuild(); }});
  const view = h("select", {"aria-label": "Which runs", id: "runs-view",
                            onchange: () => { state.view = view.value; route.update({view: view.value === "ACTIVE_ONLY" ? null : view.value}); rebuild(); }},
                 VIEWS.map(([v, label]) => h("option", {value: v, selected: v === state.view}, label)));
  const group = h("select", {"aria-label": "Group by", id: "runs-group",
                             onchange: () => { state.group = group.value; route.update({group: group.value}); rebuild(); }},
                  h("option", {value: ""}, "No grouping"),
                  h("optgroup", {label: "Params"}, keys.params.map((k) => h("option", {value: `params.${k}`, selected: state.group === `params.${k}`}, k))),
                  h("optgroup", {label: "Tags"}, keys.tags.map((k) => h("option", {value: `tags.${k}`, selected: state.group === `tags.${k}`}, k))));
  const fold = h("input", {type: "checkbox", id: "runs-fold", checked: !state.flat,
                           onchange: () => { state.flat = !fold.checked; route.update({flat: state.flat ? "1" : null}); rebuild(); }});
  const columnsButton = h("button", {type: "button", id: "choose-columns", "aria-expanded": "false",
                                     "aria-haspopup": "dialog", onclick: () => toggleChooser()}, "Columns");

  mount(main,
        h("div", {class: "crumbs"}, h("a", {href: link("experiments")}, "Experiments"), " / ", title),
        h("div", {class: "toolbar runs-toolbar"}, filter.element, view,
          h("label", {}, "Group by ", group), h("label", {}, fold, " Fold child runs"),
          columnsButton, exportLink, count),
        problem, chooser, selectionBar, holder, chartPanel);

  async function loadNames() {
    await Promise.all(ids.map(async (id) => {
      try {
        const data = await mlflowGet("experiments/get", {experiment_id: id});
        state.names.set(id, data.experiment.name);
      } catch (err) {
        showError(err.message);
      }
    }));
    const names = ids.map((id) => state.names.get(id) || id);
    title.textContent = ids.length > 1 ? `Runs of ${names.join(", ")}` : names[0];
    document.title = `${names.join(", ")} · proj`;
  }

  function columns() {
    const shown = state.cols.slice();
    if (ids.length > 1 && !shown.includes("attributes.experiment_id")) shown.splice(1, 0, "attributes.experiment_id");
    return [{id: "pick", label: h("span", {class: "sr-only"}, "Selected"), width: 36},
            {id: "attributes.run_name", label: "Run", width: 240, sortable: true, sort: "attributes.run_name"},
            ...shown.map((id) => columnSpec(id, state.names))];
  }
  function serverColumns() { return state.cols.filter((id) => !id.startsWith("attributes.")); }
  function orderBy() { return state.sort ? [`${columnSpec(state.sort.id).sort || state.sort.id} ${state.sort.desc ? "DESC" : "ASC"}`] : []; }
  function baseParams(extraFilter = "") {
    const text = [state.filter, extraFilter].filter(Boolean).join(" AND ");
    return {experiment_ids: ids.join(","), filter: text, order_by: orderBy(), view: state.view, columns: serverColumns()};
  }

  function cell(row, column, info) {
    const cols = serverColumns();
    switch (column.id) {
      case "pick":
        return h("input", {type: "checkbox", tabindex: "-1", "aria-label": `Select ${row.run_name || row.run_id}`,
                           checked: state.selected.has(row.run_id), onchange: () => toggleSelect(row)});
      case "attributes.run_name": return nameCell(row, info);
      case "attributes.status": return status(row.status);
      case "attributes.start_time": return when(row.start_time);
      case "attributes.end_time": return when(row.end_time);
      case "attributes.duration":
        return row.start_time ? duration((row.end_time || (row.status === "RUNNING" ? Date.now() : row.start_time)) - row.start_time) : "";
      case "attributes.user": return row.user || "";
      case "attributes.run_id": return h("span", {class: "mono"}, row.run_id);
      case "attributes.experiment_id": return state.names.get(String(row.experiment_id)) || String(row.experiment_id);
      default: {
        const value = row.values?.[cols.indexOf(column.id)];
        if (value === null || value === undefined) return "";
        const text = column.num ? number(value) : String(value);
        return h("span", {title: String(value)}, text);
      }
    }
  }
  function nameCell(row, info) {
    const parts = [];
    const indent = info.depth * 18;
    if (row.children > 0) {
      parts.push(h("button", {type: "button", class: "fold-children", tabindex: "-1", "aria-expanded": String(info.expanded),
                              "aria-label": `${info.expanded ? "Fold" : "Unfold"} ${row.children} child runs of ${row.run_name || row.run_id}`,
                              onclick: (event) => { event.stopPropagation(); tableOf(event.target)?.toggle(row.run_id); }},
                            info.expanded ? (info.loading ? "…" : "▾") : "▸", " ", h("span", {class: "kids"}, String(row.children))));
    } else if (info.depth) {
      parts.push(h("span", {class: "child-mark", "aria-hidden": "true"}, "└"));
    }
    parts.push(h("a", {href: link(`runs/${row.run_id}`), tabindex: "-1", class: "run-link", title: row.run_id},
                 row.run_name || row.run_id.slice(0, 12)));
    return h("span", {class: "name-cell", style: {paddingLeft: `${indent}px`}}, parts);
  }
  function tableOf(el) {
    for (const t of tables) if (t.element.contains(el)) return t;
    return null;
  }

  function makeTable(host, extraFilter = "", label = "Runs", onLoad = null) {
    const sort = state.sort ? {id: state.sort.id, desc: state.sort.desc} : null;
    const t = virtualTable(host, {
      columns: columns(), label, sort, empty: "No runs match.",
      rowKey: (row) => row.run_id,
      fetchPage: (offset, limit, signal) => {
        const params = {...baseParams(extraFilter), offset, limit};
        if (!state.flat) params.top_level = "true";
        return fetchJson(projUrl("runs/table", params), signal).then((data) => ({total: data.total, rows: data.runs}));
      },
      fetchChildren: async (row, signal) => {
        const data = await fetchJson(projUrl("runs/table", {experiment_ids: ids.join(","), view: state.view, order_by: orderBy(),
                                                            columns: serverColumns(), parent_run_id: row.run_id, limit: 1000}), signal);
        return data.runs;
      },
      cell, isSelected: (row) => state.selected.has(row.run_id),
      onToggleSelect: toggleSelect,
      onOpen: (row) => { location.hash = link(`runs/${row.run_id}`); },
      onSort: (column) => setSort(column),
      onLoad: (info) => { problem.hidden = true; onLoad?.(info); },
      onError: (err) => { problem.textContent = err.message; problem.hidden = false; count.textContent = ""; },
    });
    tables.add(t);
    return t;
  }

  function setSort(column) {
    const same = state.sort && state.sort.id === column.id;
    state.sort = same && !state.sort.desc ? {id: column.id, desc: true} : (same ? null : {id: column.id, desc: false});
    route.update({sort: state.sort ? `${state.sort.id} ${state.sort.desc ? "DESC" : "ASC"}` : null});
    rebuild();
  }

  function toggleSelect(row) {
    if (state.selected.has(row.run_id)) state.selected.delete(row.run_id); else state.selected.add(row.run_id);
    for (const t of tables) t.redraw();
    drawSelection();
  }

  function drawSelection() {
    const n = state.selected.size;
    const runs = [...state.selected];
    mount(selectionBar,
          h("span", {class: "muted"}, n ? `${n} selected` : "Select runs to compare or chart them."),
          n ? h("a", {class: n >= 2 ? "button" : "button disabled", id: "compare-runs", href: n >= 2 ? link("compare", {runs: runs.join(",")}) : null,
                      "aria-disabled": n >= 2 ? null : "true"}, "Compare") : null,
          n ? h("button", {type: "button", id: "chart-runs", onclick: () => showChart(runs)}, "Chart") : null,
          n ? h("button", {type: "button", onclick: () => { state.selected.clear(); for (const t of tables) t.redraw(); drawSelection(); }}, "Clear") : null);
  }

  function closeChart() {
    chartPanel.querySelector(".chart-box")?.projChart?.destroy();
    chartPanel.hidden = true;
    mount(chartPanel);
  }

  /** A chart of the selected runs, or (groups: [{label, runIds}]) of each group's mean with its band. */
  async function showChart(runIds, groups = null) {
    closeChart();
    chartPanel.hidden = false;
    const metric = h("select", {"aria-label": "Metric to chart"}, state.keys.metrics.map((k) => h("option", {value: k}, k)));
    const box = h("div", {class: "chart-box"});
    const close = h("button", {type: "button", "aria-label": "Close chart", onclick: () => closeChart()}, "×");
    const what = groups ? `${groups.length} group${groups.length === 1 ? "" : "s"}` : `${runIds.length} run${runIds.length === 1 ? "" : "s"}`;
    mount(chartPanel, h("div", {class: "toolbar"}, h("strong", {}, `Chart of ${what}`),
                        h("label", {}, "metric ", metric), close), box);
    if (!state.keys.metrics.length) { mount(box, h("p", {class: "muted"}, "These runs logged no metrics.")); return; }
    let chart;
    try {
      chart = await import("../chart.js");
    } catch {
      mount(box, h("p", {class: "muted"}, "Charts are not available in this build (static/js/chart.js is missing)."));
      return;
    }
    const draw = () => chart.metricChart(box, groups ? {groups, key: metric.value} : {runIds, key: metric.value}); // replaces the old
    metric.addEventListener("change", draw);
    draw();
    chartPanel.scrollIntoView({block: "nearest"});
  }

  function exportHref() {
    const params = baseParams();
    return projUrl("runs/export.csv", params);
  }

  function rebuild() {
    for (const t of tables) t.destroy();
    tables.clear();
    mount(holder);
    problem.hidden = true;
    exportLink.href = exportHref();
    if (state.group) { drawGroups(); return; }
    const t = makeTable(holder, "", "Runs", ({total}) => {
      count.textContent = `${total.toLocaleString("en")} ${state.flat ? "" : "top-level "}run${total === 1 ? "" : "s"}`;
    });
    t.element.classList.add("runs-grid");
  }

  async function drawGroups() {
    const metricCols = state.cols.filter((id) => id.startsWith("metrics."));
    const params = {...baseParams(), group_by: state.group, columns: metricCols};
    let data;
    try {
      data = await projGet("runs/groups", params);
    } catch (err) {
      problem.textContent = err.message; problem.hidden = false; count.textContent = "";
      return;
    }
    const total = data.groups.reduce((sum, g) => sum + g.count, 0);
    count.textContent = `${data.groups.length} group${data.groups.length === 1 ? "" : "s"} · ${total.toLocaleString("en")} runs`;
    const {kind, key} = parseColumn(state.group);
    const head = h("tr", {}, h("th", {}, `${kind === "params" ? "Param" : "Tag"} ${key}`), h("th", {class: "num"}, "Runs"),
                   metricCols.map((c) => ["min", "mean", "max"].map((a) => h("th", {class: "num", title: c}, `${columnSpec(c).label} ${a}`))));
    const body = h("tbody");
    for (const g of data.groups) {
      const row = h("tr", {class: "group", dataset: {value: g.value ?? ""}});
      const open = h("button", {type: "button", class: "fold-group", "aria-expanded": "false",
                                "aria-label": `Show the ${g.count} runs of ${key} = ${g.value ?? "(none)"}`}, "▸");
      const detail = h("tr", {class: "group-runs", hidden: true}, h("td", {colspan: 2 + metricCols.length * 3}));
      let inner = null;
      open.addEventListener("click", () => {
        const opened = open.getAttribute("aria-expanded") !== "true";
        open.setAttribute("aria-expanded", String(opened));
        open.textContent = opened ? "▾" : "▸";
        detail.hidden = !opened;
        if (opened && !inner) {
          const clause = g.value === null ? `${kind}.${quoteKey(key)} IS NULL` : `${kind}.${quoteKey(key)} = ${quoteValue(String(g.value))}`;
          const box = h("div", {class: "group-table", style: {height: `${Math.min(g.count, 8) * 30 + 36}px`}});
          detail.firstChild.append(box);
          inner = makeTable(box, clause, `Runs with ${key} = ${g.value ?? "(none)"}`);
        } else if (!opened && inner) {
          inner.destroy(); tables.delete(inner); inner = null; detail.firstChild.replaceChildren();
        }
      });
      row.append(h("td", {}, open, " ", g.value === null ? h("span", {class: "muted"}, "(none)") : String(g.value)),
                 h("td", {class: "num"}, String(g.count)),
                 ...metricCols.flatMap((c) => ["min", "mean", "max"].map((a) => h("td", {class: "num"}, number(g.aggregates?.[c]?.[a])))));
      body.append(row, detail);
    }
    // a group's chart uses its first 100 runs (what runs/groups lists), the most chart.js overlays anyway
    const chartGroups = data.groups.filter((g) => g.run_ids?.length)
      .map((g) => ({label: `${key}=${g.value ?? "(none)"}`, runIds: g.run_ids}));
    mount(holder, h("div", {class: "toolbar"}, h("button", {type: "button", id: "chart-groups", disabled: !chartGroups.length,
                                                            onclick: () => showChart([], chartGroups)}, "Chart groups")),
          h("table", {class: "grid groups", "aria-label": `Runs grouped by ${key}`}, h("thead", {}, head), body));
  }

  // ---- the column chooser: attributes, params, metrics (latest, min, max) and tags from runs/keys ----
  function toggleChooser(force) {
    const open = force ?? chooser.hidden;
    chooser.hidden = !open;
    columnsButton.setAttribute("aria-expanded", String(open));
    if (open) drawChooser();
  }
  function drawChooser() {
    const search = h("input", {type: "search", placeholder: "Find a column", "aria-label": "Find a column"});
    const lists = h("div", {class: "chooser-lists"});
    const box = (id, label) => h("label", {class: "choice", dataset: {col: id}},
      h("input", {type: "checkbox", checked: state.cols.includes(id), onchange: (e) => setColumn(id, e.target.checked)}), label);
    const draw = () => {
      const q = search.value.toLowerCase();
      const keep = (k) => !q || k.toLowerCase().includes(q);
      mount(lists,
            h("fieldset", {}, h("legend", {}, "Attributes"), ATTRIBUTES.filter((a) => keep(a.label)).map((a) => box(a.id, a.label))),
            h("fieldset", {}, h("legend", {}, "Params"), state.keys.params.filter(keep).map((k) => box(`params.${k}`, k))),
            h("fieldset", {class: "metrics"}, h("legend", {}, "Metrics (latest, min, max)"), state.keys.metrics.filter(keep).map((k) =>
              h("div", {class: "metric-choice"}, box(`metrics.${k}`, k), box(`metrics.${k}:min`, "min"), box(`metrics.${k}:max`, "max")))),
            h("fieldset", {}, h("legend", {}, "Tags"), state.keys.tags.filter(keep).map((k) => box(`tags.${k}`, k))));
    };
    search.addEventListener("input", draw);
    mount(chooser, h("div", {class: "toolbar"}, search,
                     h("button", {type: "button", onclick: () => { state.cols = defaultColumns(state.keys); route.update({cols: null}); rebuild(); drawChooser(); }}, "Defaults"),
                     h("button", {type: "button", onclick: () => toggleChooser(false)}, "Done")), lists);
    draw();
    search.focus();
  }
  function setColumn(id, on) {
    state.cols = on ? [...state.cols.filter((c) => c !== id), id] : state.cols.filter((c) => c !== id);
    if (!on && state.sort?.id === id) { state.sort = null; route.update({sort: null}); }
    route.update({cols: state.cols.join(",")});
    rebuild();
  }
  chooser.addEventListener("keydown", (event) => { if (event.key === "Escape") { toggleChooser(false); columnsButton.focus(); } });

  // ---- live status: while a shown run is RUNNING, its rows are fetched again every few seconds ----
  function poll() {
    for (const t of tables) {
      if (t.visibleRows().some((r) => r.status === "RUNNING" || r.status === "SCHEDULED")) t.reloadVisible();
    }
  }

  drawSelection();
  rebuild();
  timer = setInterval(poll, POLL_MS);
  return () => {
    clearInterval(timer);
    closeChart();
    filter.destroy();
    for (const t of tables) t.destroy();
  };
}
