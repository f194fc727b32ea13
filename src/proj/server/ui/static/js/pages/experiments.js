// The experiments list (#/experiments?q=..&order=..): MLflow's experiments/search a page at a time (page
// tokens, so 5,000 experiments are as quick as 50), a debounced name search, names with "/" shown as a
// folder tree of the page, run counts from proj's experiments/summary, and several experiments picked for
// one cross-experiment runs table (#/experiments/1,2).
import {h, mount, when, debounce} from "../dom.js";
import {mlflowPost, projGet} from "../api.js";
import {link, showError} from "../app.js";

const PAGE_SIZE = 100;
const ORDERS = [
  ["creation_time DESC", "Newest first"],
  ["creation_time ASC", "Oldest first"],
  ["name ASC", "Name A–Z"],
  ["name DESC", "Name Z–A"],
  ["last_update_time DESC", "Recently updated"],
];

/** The filter of a name search: ILIKE '%text%', quoted with whichever quote the text does not hold. */
export function nameFilter(text) {
  const value = text.trim();
  if (!value) return "";
  const quote = value.includes("'") ? '"' : "'";
  return `name ILIKE ${quote}%${value.replaceAll(quote, "")}%${quote}`;
}

/** The page's experiments as a tree: folders from the "/"-separated parts of the names, in page order. */
export function folderTree(experiments) {
  const root = {path: "", name: "", folders: new Map(), leaves: []};
  for (const exp of experiments) {
    const parts = exp.name.split("/").filter(Boolean);
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const path = node.path ? `${node.path}/${part}` : part;
      if (!node.folders.has(part)) node.folders.set(part, {path, name: part, folders: new Map(), leaves: []});
      node = node.folders.get(part);
    }
    node.leaves.push({exp, leaf: parts.length ? parts[parts.length - 1] : exp.name});
  }
  return root;
}

function countLeaves(node) {
  let n = node.leaves.length;
  for (const child of node.folders.values()) n += countLeaves(child);
  return n;
}

function sumRuns(node, summary) {
  let n = node.leaves.reduce((sum, {exp}) => sum + (summary.get(exp.experiment_id)?.runs || 0), 0);
  for (const child of node.folders.values()) n += sumRuns(child, summary);
  return n;
}

export async function render(main, route) {
  const state = {
    q: route.params.get("q") || "",
    order: route.params.get("order") || ORDERS[0][0],
    tokens: [null],      // the page token of each page visited (page 1 has none)
    page: 0,
    next: null,
    experiments: [],
    summary: new Map(),
    collapsed: new Set(),
    selected: new Map(), // id -> name, kept across pages and searches
    request: 0,
  };

  const search = h("input", {type: "search", id: "exp-search", placeholder: "Search experiments by name",
                             "aria-label": "Search experiments by name", value: state.q, autocomplete: "off"});
  const order = h("select", {"aria-label": "Order experiments"},
                  ORDERS.map(([value, label]) => h("option", {value, selected: value === state.order}, label)));
  const compare = h("button", {type: "button", class: "primary", id: "compare-experiments", disabled: true},
                    "Compare runs");
  const clear = h("button", {type: "button", id: "clear-selection", hidden: true}, "Clear selection");
  const body = h("tbody");
  const table = h("table", {class: "grid experiments", "aria-label": "Experiments"},
                  h("thead", {}, h("tr", {},
                    h("th", {class: "pick"}, h("span", {class: "sr-only"}, "Select")),
                    h("th", {}, "Name"), h("th", {class: "num"}, "ID"), h("th", {class: "num"}, "Runs"),
                    h("th", {class: "num"}, "Running"), h("th", {}, "Last run"), h("th", {}, "Created"))),
                  body);
  const prev = h("button", {type: "button", id: "exp-prev", disabled: true}, "← Previous");
  const next = h("button", {type: "button", id: "exp-next", disabled: true}, "Next →");
  const where = h("span", {class: "muted", id: "exp-page", "aria-live": "polite"});
  const folders = h("span", {class: "breadcrumbs", "aria-label": "Folder filter"});

  mount(main,
        h("h1", {}, "Experiments"),
        h("div", {class: "toolbar"}, search, order, folders, h("span", {class: "spacer"}), clear, compare),
        table,
        h("div", {class: "toolbar pager"}, prev, where, next));

  async function load() {
    const token = ++state.request;
    const filter = nameFilter(state.q);
    let data;
    try {
      data = await mlflowPost("experiments/search", {max_results: PAGE_SIZE, page_token: state.tokens[state.page] || undefined,
                                                     filter: filter || undefined, order_by: [state.order],
                                                     view_type: "ACTIVE_ONLY"});
    } catch (err) {
      if (token === state.request) { showError(err.message); mount(body); }
      return;
    }
    if (token !== state.request) return; // a newer search or page replaced this one
    showError(null);
    state.experiments = data.experiments || [];
    state.next = data.next_page_token || null;
    state.summary = new Map();
    draw();
    const ids = state.experiments.map((e) => e.experiment_id);
    if (!ids.length) return;
    try {
      const summary = await projGet("experiments/summary", {experiment_ids: ids.join(",")});
      if (token !== state.request) return;
      state.summary = new Map(summary.experiments.map((s) => [String(s.experiment_id), s]));
      draw();
    } catch (err) {
      console.warn("experiments/summary:", err.message); // the list stands without its counts
    }
  }

  function draw() {
    const tree = folderTree(state.experiments);
    const rows = [];
    walk(tree, 0, rows);
    if (!rows.length) rows.push(h("tr", {}, h("td", {colspan: 7, class: "muted"}, state.q ? `No experiment name contains “${state.q}”.` : "No experiments.")));
    mount(body, rows);
    const first = state.page * PAGE_SIZE + 1;
    where.textContent = state.experiments.length
      ? `Page ${state.page + 1} · experiments ${first}–${first + state.experiments.length - 1}` : "";
    prev.disabled = state.page === 0;
    next.disabled = !state.next;
    const n = state.selected.size;
    compare.disabled = n === 0;
    compare.textContent = n > 1 ? `Compare runs (${n})` : (n === 1 ? "Open runs (1)" : "Compare runs");
    clear.hidden = n === 0;
    drawFolders();
  }

  function walk(node, depth, rows) {
    for (const folder of node.folders.values()) {
      const open = !state.collapsed.has(folder.path);
      rows.push(h("tr", {class: "folder", dataset: {folder: folder.path}},
        h("td", {class: "pick"}),
        h("td", {style: {paddingLeft: `${8 + depth * 18}px`}},
          h("button", {type: "button", class: "fold", "aria-expanded": String(open), "aria-label": `${open ? "Collapse" : "Expand"} folder ${folder.path}`,
                       onclick: () => { open ? state.collapsed.add(folder.path) : state.collapsed.delete(folder.path); draw(); }},
            open ? "▾" : "▸"),
          h("span", {class: "folder-name"}, `${folder.name}/`),
          h("span", {class: "muted"}, ` ${countLeaves(folder)} experiment${countLeaves(folder) === 1 ? "" : "s"}`),
          h("button", {type: "button", class: "link", title: `Search in ${folder.path}/`,
                       onclick: () => setQuery(`${folder.path}/`)}, "only this folder")),
        h("td", {}), h("td", {class: "num"}, state.summary.size ? String(sumRuns(folder, state.summary)) : ""),
        h("td", {}), h("td", {}), h("td", {})));
      if (open) walk(folder, depth + 1, rows);
    }
    for (const {exp, leaf} of node.leaves) rows.push(experimentRow(exp, leaf, depth));
  }

  function experimentRow(exp, leaf, depth) {
    const id = exp.experiment_id;
    const s = state.summary.get(id);
    const box = h("input", {type: "checkbox", "aria-label": `Select ${exp.name}`, checked: state.selected.has(id),
                            onchange: () => { box.checked ? state.selected.set(id, exp.name) : state.selected.delete(id); draw(); }});
    return h("tr", {class: "experiment", dataset: {id}},
      h("td", {class: "pick"}, box),
      h("td", {style: {paddingLeft: `${8 + depth * 18 + (depth ? 22 : 0)}px`}},
        h("a", {href: link(`experiments/${id}`), title: exp.name, class: "exp-name"}, leaf)),
      h("td", {class: "num mono"}, id),
      h("td", {class: "num runs"}, s ? String(s.runs) : ""),
      h("td", {class: "num"}, s && s.running ? h("span", {class: "status status-running"}, String(s.running)) : ""),
      h("td", {}, s ? when(s.last_run_time) : ""),
      h("td", {}, when(exp.creation_time)));
  }

  function drawFolders() { // the folder the search is inside, as breadcrumbs that widen it
    const q = state.q;
    if (!q.endsWith("/")) { folders.replaceChildren(); return; }
    const parts = q.split("/").filter(Boolean);
    const crumbs = [h("button", {type: "button", class: "link", onclick: () => setQuery("")}, "All")];
    parts.forEach((part, i) => {
      crumbs.push(" / ");
      const path = parts.slice(0, i + 1).join("/") + "/";
      crumbs.push(i === parts.length - 1 ? h("strong", {}, part) : h("button", {type: "button", class: "link", onclick: () => setQuery(path)}, part));
    });
    folders.replaceChildren(...crumbs);
  }

  function restart() { state.tokens = [null]; state.page = 0; load(); }
  function setQuery(text) {
    state.q = text;
    search.value = text;
    route.update({q: text});
    restart();
  }

  search.addEventListener("input", debounce(() => { state.q = search.value; route.update({q: state.q}); restart(); }, 250));
  order.addEventListener("change", () => { state.order = order.value; route.update({order: order.value === ORDERS[0][0] ? null : order.value}); restart(); });
  prev.addEventListener("click", () => { if (state.page > 0) { state.page--; load(); } });
  next.addEventListener("click", () => {
    if (!state.next) return;
    state.tokens[state.page + 1] = state.next;
    state.page++;
    load();
  });
  clear.addEventListener("click", () => { state.selected.clear(); draw(); });
  compare.addEventListener("click", () => {
    if (state.selected.size) location.hash = link(`experiments/${[...state.selected.keys()].join(",")}`);
  });

  await load();
  search.focus();
}
