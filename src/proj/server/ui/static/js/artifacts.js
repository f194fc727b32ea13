// The artifact browser of the run page: a folder tree read lazily from MLflow's artifacts/list (one request
// per opened folder) and a preview from proj's artifacts/preview, which never sends more than a first part.
import {bytes, h, mount} from "./dom.js";
import {artifactUrl, mlflowGet, projGet} from "./api.js";

const PREVIEW_BYTES = 65536;
const IMAGE_MAX = 20 << 20; // larger images get a download link, never an <img> (the server's too_large says so too)
const PAGE = 500; // entries of one folder drawn at a time

function basename(path) { return path.slice(path.lastIndexOf("/") + 1); }

function downloadLink(runId, path, label = "Download") {
  return h("a", {href: artifactUrl(runId, path), download: basename(path), class: "download"}, label);
}

/**
 * artifactBrowser(el, {runId, selected, onSelect}) fills `el`; `selected` is a path to open first (its folders
 * are expanded); `onSelect(path)` is told each file the user opens (the page keeps it in the URL).
 */
export function artifactBrowser(el, {runId, selected = "", onSelect = () => {}}) {
  let stopped = false, token = 0;
  const tree = h("ul", {class: "art-tree", role: "tree", "aria-label": "Artifacts"});
  const preview = h("section", {class: "art-preview", "aria-live": "polite"},
                    h("p", {class: "muted"}, "Choose a file to preview it."));
  mount(el, h("div", {class: "artifacts"}, h("nav", {class: "art-side"}, tree), preview));
  tree.addEventListener("keydown", onKey);

  async function list(path) {
    const data = await mlflowGet("artifacts/list", {run_id: runId, path: path || null});
    const files = data.files || [];
    // folders first, then files, each by name (MLflow lists in store order)
    return files.sort((a, b) => (b.is_dir === true) - (a.is_dir === true) || a.path.localeCompare(b.path));
  }

  function item(entry, level) {
    const name = basename(entry.path);
    if (entry.is_dir) {
      const group = h("ul", {role: "group", hidden: true});
      const button = h("button", {type: "button", class: "art-item art-dir", "aria-expanded": "false",
                                  dataset: {path: entry.path}, tabindex: "-1"}, h("span", {class: "twisty", "aria-hidden": "true"}), name + "/");
      const li = h("li", {role: "treeitem", "aria-level": String(level)}, button, group);
      button.addEventListener("click", () => toggle(button, group, level));
      return li;
    }
    const button = h("button", {type: "button", class: "art-item art-file", dataset: {path: entry.path}, tabindex: "-1"},
                     h("span", {class: "art-name"}, name), h("span", {class: "art-size muted"}, bytes(entry.file_size)));
    button.addEventListener("click", () => open(entry.path, entry.file_size));
    return h("li", {role: "treeitem", "aria-level": String(level)}, button);
  }

  function fill(ul, entries, level) {
    const shown = entries.slice(0, PAGE);
    ul.append(...shown.map((entry) => item(entry, level)));
    if (entries.length > PAGE) {
      const more = h("li", {role: "none"}, h("button", {type: "button", class: "art-more", onclick: () => {
        more.remove(); fill(ul, entries.slice(PAGE), level);
      }}, `Show ${entries.length - PAGE} more`));
      ul.append(more);
    }
  }

  async function toggle(button, group, level) {
    const open = button.getAttribute("aria-expanded") === "true";
    if (open) { button.setAttribute("aria-expanded", "false"); group.hidden = true; return; }
    button.setAttribute("aria-expanded", "true");
    group.hidden = false;
    if (!group.dataset.loaded) {
      group.dataset.loaded = "1";
      group.append(h("li", {role: "none", class: "muted"}, "Loading…"));
      try {
        const entries = await list(button.dataset.path);
        if (stopped) return;
        group.replaceChildren();
        if (!entries.length) group.append(h("li", {role: "none", class: "muted"}, "(empty)"));
        fill(group, entries, level + 1);
      } catch (err) {
        group.replaceChildren(h("li", {role: "none", class: "bad"}, `Could not list: ${err.message}`));
        delete group.dataset.loaded;
      }
    }
  }

  function visibleItems() {
    return [...tree.querySelectorAll("button.art-item")].filter((b) => b.offsetParent !== null);
  }

  function focusItem(button) {
    focusable(button);
    button.focus();
  }

  function onKey(event) {
    const items = visibleItems();
    const at = items.indexOf(document.activeElement);
    if (at < 0) return;
    const button = items[at];
    const isDir = button.classList.contains("art-dir");
    const expanded = button.getAttribute("aria-expanded") === "true";
    let target = null;
    if (event.key === "ArrowDown") target = items[at + 1];
    else if (event.key === "ArrowUp") target = items[at - 1];
    else if (event.key === "Home") target = items[0];
    else if (event.key === "End") target = items[items.length - 1];
    else if (event.key === "ArrowRight" && isDir && !expanded) { button.click(); event.preventDefault(); return; }
    else if (event.key === "ArrowLeft") {
      if (isDir && expanded) { button.click(); event.preventDefault(); return; }
      const parent = button.closest("ul[role='group']")?.previousElementSibling;
      target = parent || null;
    } else return;
    event.preventDefault();
    if (target) focusItem(target);
  }

  function mark(path) {
    for (const b of tree.querySelectorAll("button.art-item[aria-current]")) b.removeAttribute("aria-current");
    const button = [...tree.querySelectorAll("button.art-file")].find((b) => b.dataset.path === path);
    if (button) { button.setAttribute("aria-current", "true"); focusable(button); }
  }

  function focusable(button) {
    for (const b of tree.querySelectorAll("button.art-item[tabindex='0']")) b.tabIndex = -1;
    button.tabIndex = 0;
  }

  async function open(path, size) {
    const mine = ++token;
    mark(path);
    onSelect(path);
    mount(preview, h("p", {class: "loading"}, `Loading ${path}…`));
    try {
      const data = await projGet("artifacts/preview", {run_id: runId, path, limit: PREVIEW_BYTES});
      if (stopped || mine !== token) return;
      mount(preview, ...renderPreview(runId, data, size));
    } catch (err) {
      if (stopped || mine !== token) return;
      mount(preview, h("h3", {class: "art-path"}, path), h("p", {class: "bad"}, `Could not preview: ${err.message}`),
            h("p", {}, downloadLink(runId, path)));
    }
  }

  async function reveal(path) {
    // open each folder on the way to `path`, then the file itself
    const parts = path.split("/").filter(Boolean);
    let ul = tree, level = 1;
    for (let i = 0; i < parts.length - 1; i++) {
      const dir = parts.slice(0, i + 1).join("/");
      const button = [...ul.querySelectorAll(":scope > li > button.art-dir")].find((b) => b.dataset.path === dir);
      if (!button) return;
      const group = button.nextElementSibling;
      if (button.getAttribute("aria-expanded") !== "true") await toggle(button, group, level);
      if (stopped) return;
      ul = group; level++;
    }
    const file = [...ul.querySelectorAll(":scope > li > button.art-file")].find((b) => b.dataset.path === path);
    if (file) file.click();
  }

  (async () => {
    try {
      const entries = await list("");
      if (stopped) return;
      if (!entries.length) { mount(el, h("p", {class: "muted"}, "This run has no artifacts.")); return; }
      fill(tree, entries, 1);
      const first = tree.querySelector("button.art-item");
      if (first) first.tabIndex = 0;
      if (selected) await reveal(selected);
    } catch (err) {
      if (!stopped) mount(el, h("p", {class: "bad"}, `Could not list the artifacts: ${err.message}`));
    }
  })();

  return () => { stopped = true; };
}

function truncatedNote(runId, data) {
  return h("p", {class: "art-truncated"},
    `Showing the first ${bytes(Math.min(PREVIEW_BYTES, data.size))} of ${bytes(data.size)} (truncated). `,
    downloadLink(runId, data.path, "Download the whole file"));
}

/** The preview's elements for one artifacts/preview answer. */
export function renderPreview(runId, data, listedSize) {
  const size = data.size ?? listedSize;
  const head = h("div", {class: "art-head"}, h("h3", {class: "art-path"}, data.path),
                 h("span", {class: "muted"}, `${bytes(size)} · ${data.kind}`), downloadLink(runId, data.path));
  const out = [head];
  if (data.truncated && data.kind !== "image" && data.kind !== "binary") out.push(truncatedNote(runId, data));
  if (data.kind === "json") {
    let text = data.text || "";
    if (!data.truncated) {
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not valid JSON after all: shown as is */ }
    }
    out.push(h("pre", {class: "art-text art-json"}, text));
  } else if (data.kind === "csv") {
    out.push(csvTable(data));
  } else if (data.kind === "text") {
    out.push(h("pre", {class: "art-text"}, data.text || ""));
  } else if (data.kind === "image") {
    if (data.url && !data.too_large && size < IMAGE_MAX) out.push(h("div", {class: "art-image"}, h("img", {src: data.url, alt: data.path})));
    else out.push(h("p", {class: "muted"}, `An image of ${bytes(size)}: too large to show here. `, downloadLink(runId, data.path)));
  } else if (data.kind === "dir") {
    out.push(h("p", {class: "muted"}, "A folder: open it in the tree."));
  } else {
    out.push(h("p", {class: "art-binary"}, `Binary file, ${bytes(size)}. `, downloadLink(runId, data.path)));
  }
  return out;
}

function csvTable(data) {
  const rows = data.rows || [];
  if (!rows.length) return h("pre", {class: "art-text"}, data.text || "");
  const [header, ...body] = rows;
  const width = Math.max(...rows.map((r) => r.length));
  const cells = (row, tag) => Array.from({length: width}, (_, i) => h(tag, {}, row[i] ?? ""));
  return h("div", {class: "art-csv"},
    h("p", {class: "muted"}, `first ${body.length} row${body.length === 1 ? "" : "s"}${data.truncated || rows.length >= 200 ? " shown" : ""}`),
    h("div", {class: "art-table-scroll"},
      h("table", {class: "grid art-table"}, h("thead", {}, h("tr", {}, cells(header, "th"))),
        h("tbody", {}, body.map((row) => h("tr", {}, cells(row, "td")))))));
}
