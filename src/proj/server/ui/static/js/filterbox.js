// The runs filter box: MLflow's search grammar typed as text, with completion of the entity prefixes
// (metrics., params., tags., attributes.) and then of the keys the runs have (from runs/keys), in an ARIA
// combobox + listbox (arrow keys choose, Enter or Tab takes, Escape closes). Enter applies the filter.
import {h} from "./dom.js";

const PREFIXES = ["metrics.", "params.", "tags.", "attributes."];
const ATTRIBUTE_KEYS = ["run_id", "run_name", "status", "start_time", "end_time", "user_id", "artifact_uri"];
const ALIASES = {metric: "metrics", metrics: "metrics", param: "params", params: "params", parameter: "params",
                 parameters: "params", tag: "tags", tags: "tags", attribute: "attributes", attributes: "attributes",
                 attr: "attributes"};
const MAX_OPTIONS = 50;
let serial = 0;

/** The key as the grammar reads it: bare when it is a plain (dotted) word, else in backticks. */
function quoteKey(key) { return /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/.test(key) ? key : `\`${key}\``; }

/** What to offer for the word before the caret: [{label, insert}] and where the word starts. */
export function completions(text, caret, keys) {
  const before = text.slice(0, caret);
  if ((before.match(/'/g) || []).length % 2 || (before.match(/"/g) || []).length % 2) return {start: caret, options: []}; // in a string
  const m = /[A-Za-z_][\w]*\.?[`"]?[^\s`"=<>!()]*$|[A-Za-z_]\w*$/.exec(before);
  if (!m) return {start: caret, options: []};
  const word = m[0];
  const dot = word.indexOf(".");
  if (dot < 0) { // a prefix, unless the word is a keyword of the grammar
    if (/^(and|like|ilike|in|is|not|null)$/i.test(word)) return {start: caret, options: []};
    const options = PREFIXES.filter((p) => p.startsWith(word.toLowerCase()) && p !== word)
      .map((p) => ({label: p, insert: p}));
    return {start: m.index, options};
  }
  const kind = ALIASES[word.slice(0, dot).toLowerCase()];
  if (!kind) return {start: caret, options: []};
  const partial = word.slice(dot + 1).replace(/^[`"]/, "").toLowerCase();
  const pool = kind === "attributes" ? ATTRIBUTE_KEYS : (keys[kind] || []);
  const hits = pool.filter((k) => k.toLowerCase().includes(partial));
  hits.sort((a, b) => Number(!a.toLowerCase().startsWith(partial)) - Number(!b.toLowerCase().startsWith(partial)));
  const prefix = word.slice(0, dot + 1);
  const options = hits.slice(0, MAX_OPTIONS).filter((k) => `${prefix}${quoteKey(k)}` !== word)
    .map((k) => ({label: `${kind}.${k}`, insert: `${prefix}${quoteKey(k)} `}));
  return {start: m.index, options};
}

/** filterBox({value, keys, onApply(text)}) -> {element, input, destroy()}. */
export function filterBox({value = "", keys, onApply}) {
  const id = `filter-${++serial}`;
  const list = h("ul", {class: "completions", role: "listbox", id: `${id}-list`, "aria-label": "Filter completions", hidden: true});
  const input = h("input", {type: "text", id, class: "filter-input", role: "combobox", "aria-autocomplete": "list",
                            "aria-expanded": "false", "aria-controls": list.id, autocomplete: "off", spellcheck: "false",
                            "aria-label": "Filter runs (MLflow search syntax)",
                            placeholder: "metrics.loss < 0.5 AND params.alpha = '0.1'", value});
  const apply = h("button", {type: "button", class: "apply-filter", onclick: () => { close(); onApply(input.value.trim()); }}, "Filter");
  const clear = h("button", {type: "button", "aria-label": "Clear the filter",
                             onclick: () => { input.value = ""; close(); onApply(""); }}, "×");
  const element = h("div", {class: "filter-box"}, input, apply, clear, list);
  let options = [], active = -1, start = 0;

  function open() {
    const found = completions(input.value, input.selectionStart ?? input.value.length, keys);
    options = found.options;
    start = found.start;
    active = -1; // nothing taken until an arrow key picks it: Enter still applies the filter typed
    draw();
  }
  function close() { options = []; active = -1; draw(); }
  function draw() {
    list.replaceChildren(...options.map((o, i) => h("li", {role: "option", id: `${id}-opt-${i}`, "aria-selected": String(i === active),
                                                          class: i === active ? "active" : "",
                                                          onmousedown: (e) => { e.preventDefault(); take(i); }}, o.label)));
    list.hidden = !options.length;
    input.setAttribute("aria-expanded", String(options.length > 0));
    if (active >= 0) input.setAttribute("aria-activedescendant", `${id}-opt-${active}`);
    else input.removeAttribute("aria-activedescendant");
    list.children[active]?.scrollIntoView({block: "nearest"});
  }
  function take(i) {
    const caret = input.selectionStart ?? input.value.length;
    const text = input.value;
    const insert = options[i].insert;
    input.value = text.slice(0, start) + insert + text.slice(caret);
    const at = start + insert.length;
    input.setSelectionRange(at, at);
    input.focus();
    open(); // a prefix taken offers the keys next
  }
  input.addEventListener("input", open);
  input.addEventListener("blur", () => setTimeout(close, 100));
  input.addEventListener("keydown", (event) => {
    const shown = options.length > 0;
    if (event.key === "ArrowDown" && shown) { event.preventDefault(); active = (active + 1) % options.length; draw(); }
    else if (event.key === "ArrowUp" && shown) { event.preventDefault(); active = (active - 1 + options.length) % options.length; draw(); }
    else if ((event.key === "Enter" || event.key === "Tab") && shown && active >= 0) { event.preventDefault(); take(active); }
    else if (event.key === "Escape" && shown) { event.preventDefault(); close(); }
    else if (event.key === "Enter") { event.preventDefault(); close(); onApply(input.value.trim()); }
  });
  return {element, input, destroy: close};
}
