// The run page (#/runs/<run_id>?tab=..): everything proj records about one run. MLflow's runs/get gives what
// every MLflow client logs (info, params, metrics, tags, inputs); proj's runs/record adds what only `proj run`
// records (command, typed params, source and patch, environment and lock, logs, models, reproductions).
// A client-only run (`proj: false`) shows what it has, with no empty proj sections.
import {bytes, duration, h, mount, number, status, when} from "../dom.js";
import {mlflowGet, mlflowPost, projGet} from "../api.js";
import {link} from "../app.js";
import {diffView} from "../diffview.js";
import {logViewer} from "../logs.js";
import {artifactBrowser} from "../artifacts.js";

const POLL_MS = 3000;
const PATCH_BYTES = 262144;
const LIVE = new Set(["RUNNING", "SCHEDULED"]);
const STREAMS = ["stdout", "stderr", "env-build"];

const TABS = [
  {id: "overview", label: "Overview", show: () => true, render: overviewTab},
  {id: "params", label: "Params", count: (c) => paramRows(c).length, show: () => true, render: paramsTab},
  {id: "metrics", label: "Metrics", count: (c) => c.run.data.metrics.length, show: () => true, render: metricsTab},
  {id: "tags", label: "Tags", count: (c) => c.run.data.tags.length, show: () => true, render: tagsTab},
  {id: "source", label: "Source", show: hasSource, render: sourceTab},
  {id: "environment", label: "Environment", show: (c) => Boolean(c.record?.env?.backend), render: envTab},
  {id: "logs", label: "Logs", show: (c) => Object.keys(c.record?.logs || {}).length > 0 || (Boolean(c.record) && LIVE.has(c.run.info.status)),
   render: logsTab, keep: true},
  {id: "artifacts", label: "Artifacts", show: () => true, render: artifactsTab, keep: true},
  {id: "model", label: "Model", count: (c) => c.record?.models?.length || 0, show: (c) => (c.record?.models?.length || 0) > 0,
   render: modelTab},
];

// ---------- data ----------

function normalise(run) {
  run.data = run.data || {};
  for (const key of ["params", "metrics", "tags"]) run.data[key] = run.data[key] || [];
  run.inputs = run.inputs || {};
  return run;
}

function tagMap(run) { return Object.fromEntries(run.data.tags.map((t) => [t.key, t.value])); }

function runName(run) { return run.info.run_name || tagMap(run)["mlflow.runName"] || ""; }

async function fetchRecord(runId) {
  try { return {record: await projGet("runs/record", {run_id: runId}), error: null}; }
  catch (err) { return {record: null, error: err}; }
}

// ---------- page ----------

export async function render(main, route) {
  const runId = route.args[0];
  let run;
  try {
    run = normalise((await mlflowGet("runs/get", {run_id: runId})).run);
  } catch (err) {
    // an unknown id (404) or one that cannot be a run id (400): one message, not an error banner
    if (err.status === 404 || err.status === 400) {
      mount(main, h("div", {class: "run-missing"}, h("h1", {}, "Run not found"),
        h("p", {}, "No run with id ", h("code", {}, runId), " in this store."),
        err.status === 400 ? h("p", {class: "muted"}, err.message) : null,
        h("p", {}, h("a", {href: link("experiments")}, "Back to the experiments"))));
      return;
    }
    throw err;
  }
  const [{record, error}, experiment] = await Promise.all([
    fetchRecord(runId),
    mlflowGet("experiments/get", {experiment_id: run.info.experiment_id}).then((d) => d.experiment).catch(() => null),
  ]);
  const ctx = {runId, run, record: record && record.proj !== false ? record : null, client: record, recordError: error,
               experiment, route, children: null, select: (id, focus) => select(id, focus)};
  let tabCleanup = null, tabUpdate = null, poll = null, stopped = false;

  const head = h("header", {class: "run-head"});
  const tablist = h("div", {class: "tabs run-tabs", role: "tablist", "aria-label": "Run sections"});
  const panel = h("section", {class: "run-panel", role: "tabpanel", tabindex: "0"});
  const note = h("p", {class: "run-note muted", hidden: true});
  const announce = h("p", {class: "sr-only", "aria-live": "polite"}); // says a live run's new status once
  mount(main, h("div", {class: "run-page"}, head, announce, note, tablist, panel));

  function visibleTabs() { return TABS.filter((t) => t.show(ctx)); }

  function currentTab() {
    const want = route.params.get("tab") || "overview";
    return visibleTabs().find((t) => t.id === want) || visibleTabs()[0];
  }

  function drawHead() { mount(head, ...header(ctx)); }

  function drawTabs() {
    const active = currentTab();
    const focused = tablist.contains(document.activeElement) ? document.activeElement.dataset.tab : null;
    mount(tablist, ...visibleTabs().map((tab) => {
      const count = tab.count ? tab.count(ctx) : null;
      return h("button", {type: "button", role: "tab", id: `tab-${tab.id}`, "aria-controls": "run-panel",
                          "aria-selected": tab === active ? "true" : "false", tabindex: tab === active ? "0" : "-1",
                          dataset: {tab: tab.id}, onclick: () => select(tab.id)},
               tab.label, count ? h("span", {class: "count"}, String(count)) : null);
    }));
    panel.id = "run-panel";
    panel.setAttribute("aria-labelledby", `tab-${active.id}`);
    if (focused) tablist.querySelector(`[data-tab="${focused}"]`)?.focus(); // a redraw while live keeps the keyboard's place
  }

  function drawPanel() {
    if (tabCleanup) { try { tabCleanup(); } catch (err) { console.error(err); } tabCleanup = null; }
    const tab = currentTab();
    panel.replaceChildren();
    panel.dataset.tab = tab.id;
    swap(tab.render(panel, ctx));
  }

  // a tab's render gives nothing, a cleanup function, or {cleanup, update} (update: redraw with fresh data in place)
  function swap(done) {
    tabCleanup = typeof done === "function" ? done : done?.cleanup || null;
    tabUpdate = done?.update || null;
  }
  ctx.swap = swap;

  function select(id, focus = false) {
    if (id === currentTab().id) return;
    route.update({tab: id === "overview" ? null : id, metric: null, path: null, stream: null, pkg: null});
    drawTabs();
    drawPanel();
    if (focus) tablist.querySelector(`[data-tab="${id}"]`)?.focus();
  }

  tablist.addEventListener("keydown", (event) => {
    const tabs = visibleTabs();
    const at = tabs.indexOf(currentTab());
    let next = null;
    if (event.key === "ArrowRight") next = tabs[(at + 1) % tabs.length];
    else if (event.key === "ArrowLeft") next = tabs[(at - 1 + tabs.length) % tabs.length];
    else if (event.key === "Home") next = tabs[0];
    else if (event.key === "End") next = tabs[tabs.length - 1];
    if (!next) return;
    event.preventDefault();
    select(next.id, true);
  });

  if (error && error.status !== 404) {
    note.hidden = false;
    note.textContent = `proj's record of this run could not be read (${error.message}); showing what MLflow's API gives.`;
  }
  drawHead();
  drawTabs();
  drawPanel();

  async function refresh() {
    poll = null;
    if (stopped) return;
    if (document.hidden) { poll = setTimeout(refresh, POLL_MS); return; } // a tab in the background asks nothing
    try {
      const fresh = normalise((await mlflowGet("runs/get", {run_id: runId})).run);
      if (stopped) return;
      const ended = !LIVE.has(fresh.info.status);
      if (fresh.info.status !== ctx.run.info.status) announce.textContent = `Run ${fresh.info.status.toLowerCase()}`;
      ctx.run = fresh;
      if (ended) {
        const again = await fetchRecord(runId);
        if (stopped) return;
        if (again.record) { ctx.record = again.record.proj !== false ? again.record : null; ctx.client = again.record; }
        ctx.children = null;
      }
      drawHead();
      drawTabs();
      const tab = currentTab();
      // the log tail and the artifact browser keep their own state; other sections are redrawn with the new data
      if (tabUpdate) tabUpdate();
      else if (!tab.keep && ended) drawPanel();
      if (!ended) poll = setTimeout(refresh, POLL_MS);
    } catch (err) {
      if (!stopped) poll = setTimeout(refresh, POLL_MS * 2);
    }
  }
  if (LIVE.has(run.info.status)) poll = setTimeout(refresh, POLL_MS);

  return () => { stopped = true; if (poll) clearTimeout(poll); if (tabCleanup) tabCleanup(); };
}

// ---------- header ----------

function header(ctx) {
  const {run, experiment} = ctx;
  const info = run.info;
  const tags = tagMap(run);
  const name = runName(run);
  const end = info.end_time || (LIVE.has(info.status) ? Date.now() : null);
  const parent = tags["mlflow.parentRunId"];
  const crumbs = h("nav", {class: "crumbs", "aria-label": "Breadcrumb"},
    h("a", {href: link("experiments")}, "Experiments"), " / ",
    h("a", {href: link(`experiments/${info.experiment_id}`)}, experiment?.name || `experiment ${info.experiment_id}`),
    parent ? [" / ", h("a", {href: link(`runs/${parent}`), class: "parent-link"}, "parent run")] : null);
  const title = h("h1", {class: "run-title"}, h("span", {class: "run-name"}, name || info.run_id), " ",
                  h("span", {class: "run-status"}, status(info.status)),
                  info.lifecycle_stage === "deleted" ? h("span", {class: "status status-deleted"}, "deleted") : null);
  const meta = h("p", {class: "run-meta muted"},
    h("span", {}, "run ", h("code", {class: "run-id"}, info.run_id)),
    h("span", {}, "started ", h("time", {class: "run-start"}, when(info.start_time))),
    info.end_time ? h("span", {}, "ended ", h("time", {class: "run-end"}, when(info.end_time))) : null,
    info.start_time && end ? h("span", {class: "run-duration"}, `${LIVE.has(info.status) ? "running for" : "took"} ${duration(end - info.start_time)}`) : null,
    info.user_id ? h("span", {}, `by ${info.user_id}`) : null,
    ctx.record ? h("span", {class: "run-kind"}, "recorded by proj run") : h("span", {class: "run-kind"}, "logged by an MLflow client"));
  return [crumbs, title, meta];
}

// ---------- overview ----------

function copyButton(text, label = "Copy") {
  const button = h("button", {type: "button", class: "copy", "aria-label": `${label} to the clipboard`}, "Copy");
  button.addEventListener("click", async () => {
    let ok = false;
    try { await navigator.clipboard.writeText(text); ok = true; } catch {
      // no clipboard API (an http page off localhost, or permission refused): the old way
      const area = h("textarea", {class: "sr-only", readonly: true});
      area.value = text;
      document.body.append(area);
      area.select();
      try { ok = document.execCommand("copy"); } catch { ok = false; }
      area.remove();
    }
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return button;
}

function kv(pairs) {
  return h("dl", {class: "kv"}, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function runLink(id, name) { return h("a", {href: link(`runs/${id}`), class: "run-link"}, name || id.slice(0, 12)); }

function verdict(value) {
  const word = value || "pending";
  return h("span", {class: `verdict verdict-${word.replace(/[^a-z-]/gi, "").toLowerCase()}`}, word);
}

function overviewTab(panel, ctx) {
  const {run, record} = ctx;
  const info = run.info;
  const tags = tagMap(run);
  const parent = tags["mlflow.parentRunId"];
  const end = info.end_time || (LIVE.has(info.status) ? Date.now() : null);
  const details = kv([
    ["Status", status(info.status)],
    ["Run ID", h("code", {}, info.run_id)],
    ["Name", runName(run)],
    ["Experiment", h("a", {href: link(`experiments/${info.experiment_id}`)}, ctx.experiment?.name || info.experiment_id)],
    ["Started", when(info.start_time)],
    ["Ended", when(info.end_time)],
    ["Duration", info.start_time && end ? duration(end - info.start_time) : ""],
    ["User", info.user_id],
    ["Project", record?.project_uri || tags["mlflow.source.name"]],
    ["Entry point", record?.entry_point || tags["mlflow.project.entryPoint"]],
    ["Exit code", record?.exit_code ?? null],
    ["Failure", record?.failure_reason ? h("span", {class: "bad"}, `${record.failure_phase || "run"}: ${record.failure_reason}`) : null],
    ["Parent run", parent ? runLink(parent) : null],
    ["Source", sourceSummary(ctx)],
    ["Environment", envSummary(ctx)],
    ["Artifact URI", h("code", {}, info.artifact_uri || "")],
  ]);
  panel.append(h("div", {class: "overview-grid"},
    h("div", {}, h("h2", {}, "Run"), details),
    h("div", {}, paramsSummary(ctx), metricsSummary(ctx))));
  if (record?.command) {
    panel.append(h("h2", {}, "Command"), h("div", {class: "command-box"},
      h("pre", {class: "command", "aria-label": "Command as run"}, record.command), copyButton(record.command, "Copy the command")));
  }
  if (record?.reproduces) {
    panel.append(h("p", {class: "reproduces-note"}, "This run reproduces ", runLink(record.reproduces), "."));
  }
  const repros = record?.reproductions || [];
  if (repros.length) {
    panel.append(h("h2", {}, "Reproductions"), h("table", {class: "grid reproductions"},
      h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "Verdict"), h("th", {}, "Started"))),
      h("tbody", {}, repros.map((r) => h("tr", {}, h("td", {}, runLink(r.run_id)), h("td", {}, verdict(r.verdict)),
                                                   h("td", {}, when(r.start_time)))))));
  }
  const kids = h("div", {class: "children"});
  panel.append(kids);
  drawChildren(kids, ctx);
  const datasets = run.inputs.dataset_inputs || [];
  if (datasets.length) {
    panel.append(h("h2", {}, "Datasets"), h("table", {class: "grid datasets"},
      h("thead", {}, h("tr", {}, ["Name", "Digest", "Context", "Source type", "Source"].map((c) => h("th", {}, c)))),
      h("tbody", {}, datasets.map((d) => {
        const context = (d.tags || []).find((t) => t.key === "mlflow.data.context")?.value || "";
        return h("tr", {}, h("td", {}, d.dataset?.name || ""), h("td", {}, h("code", {}, d.dataset?.digest || "")),
                 h("td", {}, context), h("td", {}, d.dataset?.source_type || ""), h("td", {class: "wrap"}, d.dataset?.source || ""));
      }))));
  }
  const inputs = run.inputs.model_inputs || [];
  if (inputs.length) {
    panel.append(h("h2", {}, "Model inputs"), h("ul", {}, inputs.map((m) => h("li", {}, h("code", {}, m.model_id)))));
  }
}

const SUMMARY_ROWS = 8;

function tabLink(ctx, id, text) {
  return h("button", {type: "button", class: "linklike tab-link", onclick: () => ctx.select(id, true)}, text);
}

function sourceSummary(ctx) {
  const tags = tagMap(ctx.run);
  const source = ctx.record?.source || {};
  const commit = source.commit || tags["mlflow.source.git.commit"];
  if (!commit) return null;
  const branch = source.branch || tags["mlflow.source.git.branch"];
  return h("span", {}, h("code", {}, commit.slice(0, 10)), branch ? ` on ${branch}` : "",
           source.dirty ? [" + ", tabLink(ctx, "source", "uncommitted changes")] : "");
}

function envSummary(ctx) {
  const env = ctx.record?.env;
  if (!env || !env.backend) return null;
  return h("span", {}, tabLink(ctx, "environment", env.backend),
           env.lock_digest ? [", lock ", h("code", {}, env.lock_digest.slice(0, 12))] : "",
           env.packages?.length ? `, ${env.packages.length} packages` : "",
           env.cache_hit === true ? ", reused" : env.cache_hit === false ? ", built" : "");
}

function paramsSummary(ctx) {
  const rows = paramRows(ctx);
  if (!rows.length) return null;
  return [h("h2", {}, "Params"), h("table", {class: "grid compact params-summary"}, h("tbody", {},
    rows.slice(0, SUMMARY_ROWS).map((p) => h("tr", {}, h("td", {class: "key"}, p.key), h("td", {class: "mono wrap"}, p.value),
                                              h("td", {class: "muted"}, p.type || ""))))),
    rows.length > SUMMARY_ROWS ? h("p", {}, tabLink(ctx, "params", `all ${rows.length} params`)) : null];
}

function metricsSummary(ctx) {
  const metrics = [...ctx.run.data.metrics].sort((a, b) => a.key.localeCompare(b.key));
  if (!metrics.length) return null;
  return [h("h2", {}, "Metrics"), h("table", {class: "grid compact metrics-summary"}, h("tbody", {},
    metrics.slice(0, SUMMARY_ROWS).map((m) => h("tr", {}, h("td", {class: "key"}, m.key), h("td", {class: "num"}, number(m.value)),
                                                 h("td", {class: "muted num"}, `step ${m.step ?? 0}`))))),
    h("p", {}, tabLink(ctx, "metrics", metrics.length > SUMMARY_ROWS ? `all ${metrics.length} metrics and charts` : "charts"))];
}

async function drawChildren(el, ctx) {
  // proj's record knows the children a `proj run` collected; an MLflow client marks its own with the
  // mlflow.parentRunId tag: both are children, listed once
  let children = ctx.children;
  if (!children) {
    children = [...(ctx.client?.children || [])];
    try {
      const data = await mlflowPost("runs/search", {experiment_ids: [ctx.run.info.experiment_id], max_results: 200,
                                                     filter: `tags.mlflow.parentRunId = '${ctx.runId}'`});
      const known = new Set(children.map((c) => c.run_id));
      for (const r of data.runs || []) {
        if (!known.has(r.info.run_id)) children.push({run_id: r.info.run_id, run_name: r.info.run_name, status: r.info.status});
      }
    } catch { /* the record's children are still shown */ }
    ctx.children = children;
  }
  if (!children.length) return;
  mount(el, h("h2", {}, `Child runs (${children.length})`), h("table", {class: "grid child-runs"},
    h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "Status"))),
    h("tbody", {}, children.map((c) => h("tr", {}, h("td", {}, runLink(c.run_id, c.run_name)), h("td", {}, status(c.status)))))));
}

// ---------- params ----------

function paramRows(ctx) {
  const typed = ctx.record?.params || []; // a client run's params are plain strings: runs/get has them
  const seen = new Set(typed.map((p) => p.key));
  return [...typed, ...ctx.run.data.params.filter((p) => !seen.has(p.key)).map((p) => ({key: p.key, value: p.value}))];
}

function typedText(p) {
  if (p.typed === undefined || p.typed === null) return "";
  return typeof p.typed === "string" ? p.typed : JSON.stringify(p.typed);
}

function paramsTab(panel, ctx) {
  const rows = paramRows(ctx);
  if (!rows.length) { panel.append(h("p", {class: "muted"}, "No params.")); return; }
  const typed = rows.some((p) => p.type);
  panel.append(h("table", {class: "grid params"},
    h("thead", {}, h("tr", {}, h("th", {}, "Param"), h("th", {}, "Value"),
      typed ? [h("th", {}, "Typed"), h("th", {}, "Type"), h("th", {}, "Source")] : null)),
    h("tbody", {}, rows.map((p) => h("tr", {dataset: {key: p.key}}, h("td", {class: "key"}, p.key), h("td", {class: "mono value"}, p.value),
      typed ? [h("td", {class: "mono typed"}, typedText(p)), h("td", {class: "type"}, p.type || ""),
               h("td", {class: "source"}, p.source ? h("span", {class: `psource psource-${p.source}`}, p.source) : "")] : null)))));
}

// ---------- metrics ----------

function metricsTab(panel, ctx) {
  const sorted = () => [...ctx.run.data.metrics].sort((a, b) => a.key.localeCompare(b.key));
  if (!ctx.run.data.metrics.length) {
    panel.append(h("p", {class: "muted"}, LIVE.has(ctx.run.info.status) ? "No metrics yet." : "No metrics."));
    return {cleanup: null, update: () => { if (ctx.run.data.metrics.length) { panel.replaceChildren(); ctx.swap(metricsTab(panel, ctx)); } }};
  }
  let chosen = ctx.route.params.get("metric");
  const chartBox = h("div", {class: "metric-chart-box"});
  let chart = null, token = 0;
  const body = h("tbody");
  const table = h("table", {class: "grid metrics"},
    h("thead", {}, h("tr", {}, h("th", {}, "Metric"), h("th", {class: "num"}, "Latest"), h("th", {class: "num"}, "Step"), h("th", {}, "Logged"))),
    body);
  const rows = () => {
    const focused = body.contains(document.activeElement) ? document.activeElement.closest("tr")?.dataset.key : null;
    mount(body, sorted().map((m) => h("tr", {dataset: {key: m.key}, class: m.key === chosen ? "selected" : null},
      h("td", {}, h("button", {type: "button", class: "linklike metric-key", onclick: () => choose(m.key),
                                "aria-pressed": m.key === chosen ? "true" : "false", "aria-label": `Chart ${m.key}`}, m.key)),
      h("td", {class: "num value"}, number(m.value)), h("td", {class: "num"}, String(m.step ?? "")), h("td", {}, when(m.timestamp)))));
    if (focused) [...body.querySelectorAll("tr")].find((tr) => tr.dataset.key === focused)?.querySelector("button")?.focus();
  };
  rows();
  panel.append(table, chartBox);

  async function choose(key) {
    chosen = key;
    ctx.route.update({metric: key});
    for (const row of body.querySelectorAll("tr")) {
      row.classList.toggle("selected", row.dataset.key === key);
      row.querySelector("button").setAttribute("aria-pressed", row.dataset.key === key ? "true" : "false");
    }
    if (chart) { chart.destroy(); chart = null; }
    const mine = ++token;
    const made = await drawChart(chartBox, ctx.runId, key);
    if (mine === token) chart = made; else if (made) made.destroy();
  }
  if (chosen && ctx.run.data.metrics.some((m) => m.key === chosen)) choose(chosen);
  // while the run is live the page calls update() with fresh data: new values in the table, the chart refetched
  const update = () => { rows(); if (chart && typeof chart.reload === "function") chart.reload(); };
  return {cleanup: () => { token++; if (chart) chart.destroy(); chartBox.replaceChildren(); }, update};
}

async function drawChart(box, runId, key) {
  const el = h("div", {class: "metric-chart", dataset: {key}});
  mount(box, el);
  let module;
  try { module = await import("../chart.js"); } catch {
    mount(el, h("p", {class: "muted chart-missing"}, "Charts are not available in this build."));
    return null;
  }
  try {
    const made = await module.metricChart(el, {runIds: [runId], key});
    if (typeof made === "function") return {destroy: made};
    if (made && typeof made.destroy === "function") return made;
  } catch (err) {
    mount(el, h("p", {class: "bad"}, `Could not draw ${key}: ${err.message}`));
  }
  return null;
}

// ---------- tags ----------

function isSystem(key) { return key.startsWith("mlflow.") || key.startsWith("proj."); }

function tagTable(tags, cls) {
  return h("table", {class: `grid tags ${cls}`}, h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Value"))),
    h("tbody", {}, tags.map((t) => h("tr", {}, h("td", {class: "key"}, t.key), h("td", {class: "mono wrap"}, t.value)))));
}

function tagsTab(panel, ctx) {
  const tags = [...ctx.run.data.tags].sort((a, b) => a.key.localeCompare(b.key));
  const user = tags.filter((t) => !isSystem(t.key)), system = tags.filter((t) => isSystem(t.key));
  panel.append(user.length ? tagTable(user, "user-tags") : h("p", {class: "muted"}, "No user tags."));
  if (system.length) {
    panel.append(h("details", {class: "system-tags"}, h("summary", {}, `System tags (${system.length})`), tagTable(system, "system")));
  }
}

// ---------- source ----------

function hasSource(ctx) {
  const tags = tagMap(ctx.run);
  return Boolean(ctx.record?.source || tags["mlflow.source.git.commit"]);
}

function sourceTab(panel, ctx) {
  const tags = tagMap(ctx.run);
  const source = ctx.record?.source || {};
  const commit = source.commit || tags["mlflow.source.git.commit"];
  panel.append(h("h2", {}, "Source"), kv([
    ["Project", ctx.record?.project_uri || tags["mlflow.source.name"]],
    ["Commit", commit ? h("code", {class: "commit"}, commit) : null],
    ["Branch", source.branch || tags["mlflow.source.git.branch"]],
    ["Remote", source.remote || tags["mlflow.source.git.repoURL"]],
    ["Uncommitted changes", source.dirty === undefined ? null : source.dirty ? "yes" : "no"],
    ["Patch size", source.patch_size ? bytes(source.patch_size) : null],
  ]));
  if (!source.dirty && !source.patch_size) return;
  const box = h("div", {class: "patch"}, h("p", {class: "loading"}, "Loading the patch…"));
  panel.append(h("h2", {}, "Uncommitted changes"), box);
  let stopped = false;
  projGet("runs/patch", {run_id: ctx.runId, limit: PATCH_BYTES}).then((patch) => {
    if (!stopped) mount(box, diffView(patch.text, {truncated: patch.truncated, size: patch.size}));
  }).catch((err) => {
    if (!stopped) mount(box, h("p", {class: "muted"}, err.status === 404 ? "No patch was recorded." : `Could not read the patch: ${err.message}`));
  });
  return () => { stopped = true; };
}

// ---------- environment ----------

function envTab(panel, ctx) {
  const env = ctx.record.env;
  panel.append(h("h2", {}, "Environment"), kv([
    ["Backend", env.backend ? h("strong", {class: "env-backend"}, env.backend) : null],
    ["Why", env.reason],
    ["Environment key", env.key ? h("code", {}, env.key) : null],
    ["Cache hit", env.cache_hit === undefined || env.cache_hit === null ? null : env.cache_hit ? "yes (reused)" : "no (built)"],
    ["Build time", env.build_seconds === undefined || env.build_seconds === null ? null : duration(env.build_seconds * 1000)],
    ["Python", env.python],
    ["Lock format", env.lock_format],
    ["Lock digest", env.lock_digest ? h("code", {class: "lock-digest"}, env.lock_digest) : null],
  ]));
  const packages = env.packages || [];
  if (!packages.length) { panel.append(h("p", {class: "muted"}, "The lock lists no packages.")); return; }
  const search = h("input", {type: "search", class: "pkg-search", placeholder: "Filter packages",
                             "aria-label": "Filter packages", value: ctx.route.params.get("pkg") || ""});
  const shown = h("span", {class: "muted pkg-count"});
  const body = h("tbody");
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = packages.filter((p) => !q || `${p.name} ${p.version || ""} ${p.source || ""}`.toLowerCase().includes(q));
    mount(body, rows.map((p) => h("tr", {}, h("td", {class: "pkg-name"}, p.name), h("td", {class: "mono"}, p.version || ""),
                                          h("td", {class: "muted wrap"}, p.source || ""))));
    shown.textContent = q ? `${rows.length} of ${packages.length} packages` : `${packages.length} packages`;
  };
  search.addEventListener("input", () => { ctx.route.update({pkg: search.value.trim() || null}); draw(); });
  panel.append(h("h2", {}, "Packages"), h("div", {class: "toolbar"}, search, shown),
    h("table", {class: "grid packages"}, h("thead", {}, h("tr", {}, h("th", {}, "Package"), h("th", {}, "Version"), h("th", {}, "Source"))), body));
  draw();
}

// ---------- logs ----------

function logsTab(panel, ctx) {
  const logs = ctx.record.logs || {};
  let streams = STREAMS.filter((s) => s in logs).concat(Object.keys(logs).filter((s) => !STREAMS.includes(s)));
  if (!streams.length) streams = ["stdout"]; // a live run that has written nothing yet
  let stream = ctx.route.params.get("stream");
  if (!streams.includes(stream)) stream = streams[0];
  const bar = h("div", {class: "toolbar log-streams", role: "group", "aria-label": "Log stream"});
  const view = h("div", {class: "log-view"});
  let stop = null;
  const show = (name) => {
    stream = name;
    ctx.route.update({stream: name === streams[0] ? null : name});
    mount(bar, streams.map((s) => h("button", {type: "button", "aria-pressed": s === name ? "true" : "false", dataset: {stream: s},
                                               onclick: () => show(s)}, s, h("span", {class: "count"}, bytes(logs[s])))));
    if (stop) stop();
    stop = logViewer(view, {runId: ctx.runId, stream: name, onSize: (size) => {
      logs[name] = size;
      const count = bar.querySelector(`[data-stream="${name}"] .count`);
      if (count) count.textContent = bytes(size);
    }});
  };
  panel.append(bar, view);
  show(stream);
  return () => { if (stop) stop(); };
}

// ---------- artifacts ----------

function artifactsTab(panel, ctx) {
  return artifactBrowser(panel, {runId: ctx.runId, selected: ctx.route.params.get("path") || "",
                                 onSelect: (path) => ctx.route.update({path})});
}

// ---------- model ----------

function parseSchema(value) {
  if (!value) return null;
  if (typeof value !== "string") return value;
  try { return JSON.parse(value); } catch { return value; }
}

function schemaTable(title, value) {
  const schema = parseSchema(value);
  if (!schema) return null;
  if (!Array.isArray(schema)) return h("div", {}, h("h4", {}, title), h("pre", {}, typeof schema === "string" ? schema : JSON.stringify(schema, null, 2)));
  return h("div", {}, h("h4", {}, title), h("table", {class: `grid signature signature-${title.toLowerCase()}`},
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th", {}, "Required"))),
    h("tbody", {}, schema.map((col) => {
      const tensor = col["tensor-spec"];
      const type = tensor ? `tensor ${tensor.dtype} ${JSON.stringify(tensor.shape)}` : col.type;
      return h("tr", {}, h("td", {}, col.name ?? ""), h("td", {class: "mono"}, type || ""), h("td", {}, col.required === false ? "no" : "yes"));
    }))));
}

function modelTab(panel, ctx) {
  for (const model of ctx.record.models || []) {
    const flavors = model.flavors || {};
    const names = Array.isArray(flavors) ? flavors : Object.keys(flavors);
    const files = model.files || [];
    const sig = model.signature || null;
    panel.append(h("article", {class: "model", dataset: {path: model.path}},
      h("h2", {}, h("code", {}, model.path), " ", model.valid === false ? h("span", {class: "status status-failed"}, "invalid") : null),
      model.valid === false && model.reason ? h("p", {class: "bad"}, model.reason) : null,
      kv([["Flavors", h("span", {class: "flavors"}, names.map((n) => h("span", {class: "chip flavor"}, n)))],
          ["Size", model.size === undefined ? null : bytes(model.size)],
          ["Loader", flavors.python_function?.loader_module ? h("code", {}, flavors.python_function.loader_module) : null],
          ["Python", flavors.python_function?.python_version]]),
      h("h3", {}, "Signature"),
      sig ? h("div", {class: "signature-box"}, schemaTable("Inputs", sig.inputs), schemaTable("Outputs", sig.outputs),
              sig.params ? schemaTable("Params", sig.params) : null)
          : h("p", {class: "muted"}, "No signature."),
      files.length ? [h("h3", {}, "Files"), h("ul", {class: "model-files"}, files.map((f) => {
        const path = typeof f === "string" ? f : f.path;
        return h("li", {}, h("a", {href: link(`runs/${ctx.runId}`, {tab: "artifacts", path: `${model.path}/${path}`})}, h("code", {}, path)),
                 typeof f === "object" && f.size !== undefined ? h("span", {class: "muted"}, ` ${bytes(f.size)}`) : null);
      }))] : null));
  }
}
