// The single-page shell: a hash router that mounts one page module at a time into <main>.
//
// Routes (the hash; everything a page shows is in its URL, so a link or a reload shows the same view):
//   #/experiments                      experiments list            pages/experiments.js
//   #/experiments/1,2?cols=..&...      runs table of 1..N exps     pages/runs.js
//   #/runs/<run_id>?tab=..             one run                     pages/run.js
//   #/compare?runs=a,b,c               2..N runs side by side      pages/compare.js
//   #/models                           registered models           pages/models.js
//   #/models/<name>                    one model's versions        pages/model.js
//   #/models/<name>/versions/<v>       one version                 pages/version.js
// A page module exports `render(main, route)`; it may return a cleanup function (timers, observers),
// called before the next page mounts. `route.update({key: value})` rewrites the hash's query without
// re-rendering (a page keeps its state in the URL as the user changes it).
import {h, mount} from "./dom.js";

const PAGES = [
  [/^$/, "experiments"],
  [/^experiments$/, "experiments"],
  [/^experiments\/([^/]+)$/, "runs"],
  [/^runs\/([^/]+)$/, "run"],
  [/^compare$/, "compare"],
  [/^models$/, "models"],
  [/^models\/([^/]+)$/, "model"],
  [/^models\/([^/]+)\/versions\/([^/]+)$/, "version"],
];

let cleanup = null;
let current = 0;

export function parseHash(hash = location.hash) {
  const text = hash.replace(/^#\/?/, "");
  const cut = text.indexOf("?");
  const path = cut < 0 ? text : text.slice(0, cut);
  const params = new URLSearchParams(cut < 0 ? "" : text.slice(cut + 1));
  return {path, params};
}

/** The hash for a path and params: link("runs/abc", {tab: "logs"}) -> "#/runs/abc?tab=logs". */
export function link(path, params = {}) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") q.set(key, String(value));
  }
  const text = q.toString();
  return `#/${path}${text ? "?" + text : ""}`;
}

export function showError(message) {
  const box = document.getElementById("error");
  if (!message) { box.hidden = true; box.replaceChildren(); return; }
  mount(box, h("span", {}, String(message)), h("button", {type: "button", "aria-label": "Dismiss", onclick: () => showError(null)}, "×"));
  box.hidden = false;
}

async function render() {
  const token = ++current;
  const {path, params} = parseHash();
  const main = document.getElementById("main");
  if (cleanup) { try { cleanup(); } catch (err) { console.error(err); } cleanup = null; }
  showError(null);
  let name = null, args = [];
  for (const [pattern, page] of PAGES) {
    const match = pattern.exec(path);
    if (match) { name = page; args = match.slice(1).map(decodeURIComponent); break; }
  }
  for (const a of document.querySelectorAll("[data-nav]")) {
    const active = (a.dataset.nav === "models") === (name === "models" || name === "model" || name === "version");
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (!name) { mount(main, h("h1", {}, "Not found"), h("p", {}, `No page at #/${path}.`)); return; }
  const route = {
    name, path, args, params,
    update(changes) {
      for (const [key, value] of Object.entries(changes)) {
        if (value === null || value === undefined || value === "") params.delete(key); else params.set(key, String(value));
      }
      const text = params.toString();
      history.replaceState(null, "", `#/${path}${text ? "?" + text : ""}`);
    },
  };
  main.replaceChildren(h("p", {class: "loading"}, "Loading…"));
  try {
    const module = await import(`./pages/${name}.js`);
    if (token !== current) return; // the user went elsewhere while the module loaded
    main.replaceChildren();
    const done = await module.render(main, route);
    if (token !== current) { if (typeof done === "function") done(); return; }
    cleanup = typeof done === "function" ? done : null;
  } catch (err) {
    if (token !== current) return;
    console.error(err);
    main.replaceChildren();
    showError(err.message || String(err));
  }
}

function toggleTheme() {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  localStorage.setItem("proj.theme", next);
  window.dispatchEvent(new CustomEvent("proj-theme", {detail: next})); // charts redraw in the new colours
}

window.addEventListener("hashchange", render);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("theme").addEventListener("click", toggleTheme);
  // the skip link moves focus only: as a plain #main link it would replace the route (and show "Not found")
  document.querySelector("a.skip").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
  render();
});
