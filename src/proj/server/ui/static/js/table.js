// A virtual grid: only the visible rows (plus a small overscan) are in the DOM, at a fixed row height, in a
// scroll container whose height comes from the total count; rows arrive in pages fetched as the user
// scrolls (cached; a page scrolled past before it arrived is aborted). role="grid" with aria-rowcount and
// aria-rowindex; arrow keys move the focused cell (roving tabindex), Enter opens the row, Space toggles its
// selection. Rows can be unfolded: a row's children are inserted below it (table.toggle(key)).
import {h} from "./dom.js";

/**
 * virtualTable(host, {
 *   columns: [{id, label, width, num, sortable, title}],  // width in px
 *   fetchPage: async (offset, limit, signal) => ({total, rows}),
 *   fetchChildren: async (row, signal) => rows,           // optional: unfolding
 *   rowKey: (row) => string, cell: (row, column, info) => Node|string, info = {depth, expanded, loading}
 *   isSelected, onToggleSelect(row), onOpen(row), onSort(column), sort: {id, desc},
 *   onLoad({total}), onError(err), label, empty, rowHeight = 30, pageSize = 200, overscan = 8, cachePages = 40 })
 * -> {refresh(), reloadVisible(), redraw(), toggle(key), isExpanded(key), visibleRows(), total(), destroy(), element}
 */
export function virtualTable(host, options) {
  const o = {rowHeight: 30, pageSize: 200, overscan: 8, cachePages: 40, label: "Rows", empty: "No rows.", ...options};
  const rh = o.rowHeight;
  const template = o.columns.map((c) => `${c.width || 120}px`).join(" ");
  const width = o.columns.reduce((sum, c) => sum + (c.width || 120), 0);

  const head = h("div", {class: "vt-head", role: "rowgroup"});
  const body = h("div", {class: "vt-body", role: "rowgroup"});
  const note = h("div", {class: "vt-note muted", "aria-live": "polite"}, "Loading…");
  const grid = h("div", {class: "vt", role: "grid", "aria-label": o.label, "aria-colcount": o.columns.length,
                         "aria-rowcount": 1}, head, body);
  const wrap = h("div", {class: "vt-wrap"}, grid, note); // the note is no row: it sits beside the grid, not in it
  grid.style.setProperty("--vt-template", template); // custom properties: not settable through h()'s style object
  grid.style.setProperty("--vt-width", `${width}px`);
  grid.style.setProperty("--vt-row", `${rh}px`);
  host.append(wrap);

  let total = null;                 // server rows matching (null: not known yet)
  let generation = 0;               // bumped whenever every mounted row must be rebuilt
  let pages = new Map();            // page number -> {rows} | {controller} | {error}
  const expansions = new Map();     // key of an unfolded server row -> {index, rows: [{row, depth}], controller}
  const mounted = new Map();        // display index -> element
  const focus = {row: 0, col: 0};   // row -1 is the header
  let frame = 0;

  // ---- display index <-> server rows and unfolded children ----
  function sortedExpansions() { return [...expansions.values()].filter((e) => !e.nested).sort((a, b) => a.index - b.index); }
  function count() {
    if (total === null) return 0;
    let n = total;
    for (const e of expansions.values()) n += e.rows.length;
    return n;
  }
  function locate(d) { // -> {server: index} or {entry, parentIndex}
    let shift = 0;
    for (const e of sortedExpansions()) {
      if (d <= e.index + shift) return {server: d - shift};
      if (d <= e.index + shift + e.rows.length) return {entry: e.rows[d - e.index - shift - 1], parentIndex: e.index};
      shift += e.rows.length;
    }
    return {server: d - shift};
  }
  function serverRow(i) {
    const page = pages.get(Math.floor(i / o.pageSize));
    return page && page.rows ? page.rows[i % o.pageSize] : undefined;
  }
  function entryAt(d) {
    const where = locate(d);
    if (where.entry) return where.entry;
    const row = serverRow(where.server);
    return row === undefined ? null : {row, depth: 0, index: where.server};
  }

  // ---- pages ----
  function loadPage(p, replace = false) {
    const old = pages.get(p);
    if (old && (old.controller || (old.rows && !replace) || old.error)) return;
    const controller = new AbortController();
    pages.set(p, {...(old || {}), controller});
    const mine = pages;
    o.fetchPage(p * o.pageSize, o.pageSize, controller.signal).then((data) => {
      if (mine !== pages || pages.get(p)?.controller !== controller) return;
      pages.set(p, {rows: data.rows});
      if (total !== data.total) { total = data.total; layout(); }
      generation++;
      o.onLoad?.({total});
      schedule();
    }, (err) => {
      if (err.name === "AbortError" || mine !== pages) return;
      pages.set(p, old?.rows ? {rows: old.rows} : {error: err}); // a failed refresh keeps the rows shown
      if (total === null) { total = 0; layout(); }
      o.onError?.(err);
      schedule();
    });
  }
  function ensurePages(first, last) {
    if (total === null) { loadPage(0); return; }
    const a = locate(first), b = locate(last);
    const lo = Math.floor((a.server ?? a.parentIndex) / o.pageSize);
    const hi = Math.floor(Math.min(total - 1, b.server ?? b.parentIndex) / o.pageSize);
    for (let p = lo; p <= hi; p++) loadPage(p);
    for (const [p, page] of pages) { // abort what the user scrolled past before it arrived
      if (page.controller && !page.rows && (p < lo - 1 || p > hi + 1)) { page.controller.abort(); pages.delete(p); }
    }
    if (pages.size > o.cachePages) { // forget the pages farthest from the view (scrolling 100,000 runs end to end)
      const far = [...pages.keys()].filter((p) => p < lo || p > hi)
        .sort((a, b) => Math.min(Math.abs(b - lo), Math.abs(b - hi)) - Math.min(Math.abs(a - lo), Math.abs(a - hi)));
      for (const p of far.slice(0, pages.size - o.cachePages)) { pages.get(p).controller?.abort(); pages.delete(p); }
    }
  }

  // ---- rendering ----
  function layout() {
    const n = count();
    body.style.height = `${n * rh}px`;
    grid.setAttribute("aria-rowcount", String(n + 1));
    note.textContent = total === null ? "Loading…" : (n === 0 ? o.empty : "");
    note.hidden = !note.textContent;
  }
  function schedule() { if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); }); }
  function range() {
    const n = count();
    const top = Math.max(0, grid.scrollTop - head.offsetHeight);
    const first = Math.max(0, Math.floor(top / rh) - o.overscan);
    const last = Math.min(n - 1, Math.ceil((top + grid.clientHeight) / rh) + o.overscan);
    return [first, last];
  }
  function render() {
    const active = document.activeElement;
    const hadFocus = active !== grid && grid.contains(active); // rebuilt rows must not drop the keyboard focus
    layout();
    const [first, last] = range();
    if (last >= first) ensurePages(first, last); else if (total === null) loadPage(0);
    for (const [d, el] of mounted) {
      if (d < first || d > last) { el.remove(); mounted.delete(d); }
    }
    for (let d = first; d <= last; d++) {
      const entry = entryAt(d);
      const el = mounted.get(d);
      if (el && el._entry?.row === entry?.row && el._generation === generation) continue;
      const next = buildRow(d, entry);
      if (el) el.replaceWith(next); else body.append(next);
      mounted.set(d, next);
    }
    if (hadFocus && !grid.contains(document.activeElement)) cellAt(focus.row, focus.col)?.focus({preventScroll: true});
  }
  function buildRow(d, entry) {
    const row = entry?.row;
    const key = row ? o.rowKey(row) : null;
    const selected = row ? Boolean(o.isSelected?.(row)) : false;
    const el = h("div", {class: `vt-row${selected ? " selected" : ""}${entry?.depth ? " child" : ""}`, role: "row",
                         "aria-rowindex": d + 2, "aria-selected": row ? String(selected) : null,
                         style: {transform: `translateY(${d * rh}px)`}, dataset: {index: d, key: key ?? ""}});
    o.columns.forEach((column, c) => {
      const content = row ? o.cell(row, column, {depth: entry.depth, expanded: expansions.has(key),
                                                   loading: expansions.get(key)?.loading}) : (c === 1 ? "…" : "");
      el.append(h("div", {class: `vt-cell${column.num ? " num" : ""}`, role: "gridcell", "aria-colindex": c + 1,
                          tabindex: focus.row === d && focus.col === c ? "0" : "-1"}, content));
    });
    el._entry = entry;
    el._generation = generation;
    return el;
  }
  function buildHead() {
    const row = h("div", {class: "vt-row vt-header", role: "row", "aria-rowindex": 1});
    o.columns.forEach((column, c) => {
      const sorted = o.sort && o.sort.id === column.id;
      const label = column.sortable
        ? h("button", {type: "button", class: "vt-sort", tabindex: "-1", title: column.title || `Sort by ${column.label}`,
                       onclick: () => o.onSort?.(column)}, column.label, sorted ? (o.sort.desc ? " ▼" : " ▲") : "")
        : column.label;
      row.append(h("div", {class: `vt-cell${column.num ? " num" : ""}`, role: "columnheader", "aria-colindex": c + 1,
                           "aria-sort": sorted ? (o.sort.desc ? "descending" : "ascending") : (column.sortable ? "none" : null),
                           title: column.title, tabindex: focus.row === -1 && focus.col === c ? "0" : "-1"}, label));
    });
    head.replaceChildren(row);
  }

  // ---- keyboard: a roving tabindex over cells; the header is row -1 ----
  function cellAt(d, c) {
    const rowEl = d === -1 ? head.firstChild : mounted.get(d);
    return rowEl ? rowEl.children[c] : null;
  }
  function moveTo(d, c) {
    const n = count();
    d = Math.max(-1, Math.min(n - 1, d));
    c = Math.max(0, Math.min(o.columns.length - 1, c));
    const old = cellAt(focus.row, focus.col);
    if (old) old.tabIndex = -1;
    focus.row = d; focus.col = c;
    if (d >= 0) { // scroll the row into view under the sticky header
      const top = d * rh, view = grid.clientHeight - head.offsetHeight;
      const scrolled = grid.scrollTop;
      if (top < scrolled) grid.scrollTop = top;
      else if (top + rh > scrolled + view) grid.scrollTop = top + rh - view;
    }
    render();
    const el = cellAt(d, c);
    if (el) { el.tabIndex = 0; el.focus({preventScroll: true}); }
  }
  function onKey(event) {
    const page = Math.max(1, Math.floor((grid.clientHeight - head.offsetHeight) / rh) - 1);
    const {row: d, col: c} = focus;
    const moves = {ArrowDown: [d + 1, c], ArrowUp: [d - 1, c], ArrowLeft: [d, c - 1], ArrowRight: [d, c + 1],
                   PageDown: [d + page, c], PageUp: [Math.max(0, d - page), c],
                   Home: event.ctrlKey ? [0, 0] : [d, 0], End: event.ctrlKey ? [count() - 1, c] : [d, o.columns.length - 1]};
    if (event.target.closest("input:not([type=checkbox]), select, textarea")) return;
    if (moves[event.key]) { event.preventDefault(); moveTo(...moves[event.key]); return; }
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (d === -1) { const column = o.columns[c]; if (column.sortable) o.onSort?.(column); return; }
      const entry = entryAt(d);
      if (!entry) return;
      if (event.key === "Enter") o.onOpen?.(entry.row); else o.onToggleSelect?.(entry.row);
    }
  }
  function onFocusIn(event) { // a click on a cell makes it the focused one
    const cell = event.target.closest("[role=gridcell], [role=columnheader]");
    const rowEl = cell?.parentElement;
    if (!cell || !rowEl) return;
    const d = rowEl.classList.contains("vt-header") ? -1 : Number(rowEl.dataset.index);
    const c = [...rowEl.children].indexOf(cell);
    if (d === focus.row && c === focus.col) return;
    const old = cellAt(focus.row, focus.col);
    if (old) old.tabIndex = -1;
    focus.row = d; focus.col = c; cell.tabIndex = 0;
  }
  function onClick(event) {
    const cell = event.target.closest("[role=gridcell]");
    if (cell && !event.target.closest("a, button, input")) cell.focus({preventScroll: true});
  }

  // ---- unfolding ----
  async function toggle(key) {
    if (expansions.has(key)) { collapse(key); return; }
    let d = -1;
    for (const [i, el] of mounted) if (el.dataset.key === key) { d = i; break; }
    const where = d >= 0 ? locate(d) : null;
    if (!where) return;
    if (where.entry) { await unfoldNested(where, key); return; }
    const row = serverRow(where.server);
    const expansion = {index: where.server, rows: [], loading: true, controller: new AbortController()};
    expansions.set(key, expansion);
    redraw();
    try {
      const rows = await o.fetchChildren(row, expansion.controller.signal);
      if (expansions.get(key) !== expansion) return;
      expansion.rows = rows.map((r) => ({row: r, depth: 1}));
    } catch (err) {
      if (err.name !== "AbortError") { expansions.delete(key); o.onError?.(err); }
    }
    expansion.loading = false;
    redraw();
  }
  async function unfoldNested(where, key) { // a child's own children go into the same list, one level deeper
    const owner = [...expansions.values()].find((e) => !e.nested && e.rows.includes(where.entry));
    const marker = {nested: true, index: -1, rows: [], loading: true};
    expansions.set(key, marker);
    redraw();
    try {
      const rows = await o.fetchChildren(where.entry.row, new AbortController().signal);
      const at = owner.rows.indexOf(where.entry);
      if (at >= 0 && expansions.get(key) === marker) {
        owner.rows.splice(at + 1, 0, ...rows.map((r) => ({row: r, depth: where.entry.depth + 1})));
      }
    } catch (err) { expansions.delete(key); o.onError?.(err); }
    marker.loading = false;
    redraw();
  }
  function collapse(key) {
    const e = expansions.get(key);
    expansions.delete(key);
    if (e?.nested) { // drop the rows below it that are deeper than it
      for (const owner of expansions.values()) {
        if (owner.nested) continue;
        const at = owner.rows.findIndex((x) => o.rowKey(x.row) === key);
        if (at < 0) continue;
        let end = at + 1;
        while (end < owner.rows.length && owner.rows[end].depth > owner.rows[at].depth) end++;
        for (const x of owner.rows.slice(at + 1, end)) expansions.delete(o.rowKey(x.row));
        owner.rows.splice(at + 1, end - at - 1);
      }
    } else if (e) {
      e.controller?.abort();
      for (const x of e.rows) expansions.delete(o.rowKey(x.row));
    }
    redraw();
  }
  function redraw() {
    const hadFocus = grid.contains(document.activeElement) && document.activeElement !== grid;
    generation++;
    buildHead();
    render();
    if (hadFocus && !grid.contains(document.activeElement)) cellAt(focus.row, focus.col)?.focus({preventScroll: true});
  }

  // ---- live refresh: the visible pages and unfolded children again, in place ----
  function reloadVisible() {
    const [first, last] = range();
    if (last < first || total === null) return;
    const a = locate(first), b = locate(last);
    const lo = Math.floor((a.server ?? a.parentIndex) / o.pageSize);
    const hi = Math.floor(Math.min(total - 1, b.server ?? b.parentIndex) / o.pageSize);
    for (let p = lo; p <= hi; p++) loadPage(p, true);
    for (const [key, e] of expansions) {
      if (e.nested || e.loading || !e.rows.length) continue;
      const parent = serverRow(e.index);
      if (!parent || o.rowKey(parent) !== key) continue;
      o.fetchChildren(parent, new AbortController().signal).then((rows) => {
        if (expansions.get(key) !== e) return;
        const fresh = new Map(rows.map((r) => [o.rowKey(r), r]));
        e.rows = e.rows.map((x) => (fresh.has(o.rowKey(x.row)) ? {...x, row: fresh.get(o.rowKey(x.row))} : x));
        redraw();
      }, () => {});
    }
  }

  function refresh() {
    for (const page of pages.values()) page.controller?.abort();
    for (const e of expansions.values()) e.controller?.abort();
    pages = new Map();
    expansions.clear();
    total = null;
    for (const el of mounted.values()) el.remove();
    mounted.clear();
    grid.scrollTop = 0;
    focus.row = 0;
    redraw();
  }

  function visibleRows() {
    const out = [];
    for (const el of mounted.values()) if (el._entry) out.push(el._entry.row);
    return out;
  }

  const onScroll = () => schedule();
  const resize = new ResizeObserver(() => schedule());
  grid.addEventListener("scroll", onScroll, {passive: true});
  grid.addEventListener("keydown", onKey);
  grid.addEventListener("focusin", onFocusIn);
  grid.addEventListener("click", onClick);
  resize.observe(grid);
  redraw();

  return {
    element: grid, refresh, reloadVisible, redraw, toggle, visibleRows,
    isExpanded: (key) => expansions.has(key),
    total: () => total,
    setSort(sort) { o.sort = sort; buildHead(); },
    destroy() {
      for (const page of pages.values()) page.controller?.abort();
      resize.disconnect();
      cancelAnimationFrame(frame);
      wrap.remove();
    },
  };
}

/** fetch() of a JSON URL with an AbortSignal, errors as the server's one-line message (as api.js's send). */
export async function fetchJson(url, signal) {
  const response = await fetch(url, {headers: {"Accept": "application/json"}, signal});
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch { data = null; }
  if (!response.ok) {
    const err = new Error(data?.message || `${response.status} ${response.statusText}`);
    err.status = response.status;
    err.code = data?.error_code;
    throw err;
  }
  if (data === null) throw new Error(`not JSON: ${url}`);
  return data;
}
