// #/models?q=<name part>&order=name|updated&n=<page size>&page=<token>: the registered models (MLflow's registered-models/search),
// searchable by name, a page at a time, with each model's latest version per stage, aliases, tags, last update.
import {h, mount, when, debounce} from "../dom.js";
import {mlflowGet} from "../api.js";
import {showError} from "../app.js";
import {STAGES, aliasChip, likeLiteral, modelHref, stageBadge, tagList, versionHref} from "../registry.js";

const PAGE = 50;
const MAX_PAGE = 1000; // the server's cap on registered-models/search
const ORDERS = {name: ["name ASC"], updated: ["timestamp DESC", "name ASC"]};

function latestCell(model) {
  const byStage = new Map((model.latest_versions || []).map((v) => [v.current_stage || "None", v]));
  const items = STAGES.filter((s) => byStage.has(s)).map((s) => {
    const v = byStage.get(s);
    return h("li", {dataset: {stage: s}}, stageBadge(s), " ", h("a", {href: versionHref(model.name, v.version)}, `v${v.version}`));
  });
  return items.length ? h("ul", {class: "latest"}, items) : h("span", {class: "muted"}, "no versions");
}

function aliasesCell(model) {
  const aliases = model.aliases || [];
  if (!aliases.length) return h("span", {class: "muted"}, "none");
  return h("span", {class: "aliases"}, aliases.map((a) => aliasChip(a.alias, {version: a.version, name: model.name})));
}

function row(model) {
  return h("tr", {dataset: {model: model.name}},
    h("td", {class: "model-name"}, h("a", {href: modelHref(model.name)}, model.name),
      model.description ? h("div", {class: "muted description"}, model.description) : null),
    h("td", {}, latestCell(model)),
    h("td", {}, aliasesCell(model)),
    h("td", {}, tagList(model.tags)),
    h("td", {class: "num"}, h("time", {}, when(model.last_updated_timestamp || model.creation_timestamp))));
}

export async function render(main, route) {
  const state = {q: route.params.get("q") || "", order: ORDERS[route.params.get("order")] ? route.params.get("order") : "name",
                 token: route.params.get("page") || "", previous: [],
                 size: Math.min(MAX_PAGE, Math.max(1, parseInt(route.params.get("n"), 10) || PAGE))};
  const search = h("input", {type: "search", id: "model-search", value: state.q, placeholder: "name contains…",
                             "aria-label": "Search registered models by name", autocomplete: "off"});
  const order = h("select", {id: "model-order", "aria-label": "Order models by"},
    h("option", {value: "name", selected: state.order === "name"}, "Name"),
    h("option", {value: "updated", selected: state.order === "updated"}, "Last updated"));
  const body = h("tbody");
  const summary = h("p", {class: "muted", "aria-live": "polite"});
  const prev = h("button", {type: "button", disabled: true}, "← Previous");
  const next = h("button", {type: "button", disabled: true}, "Next →");
  mount(main, h("div", {class: "registry registry-models"},
    h("h1", {}, "Registered models"),
    h("div", {class: "toolbar"}, h("label", {for: "model-search"}, "Search"), search,
      h("label", {for: "model-order"}, "Order"), order),
    h("table", {class: "grid models"},
      h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Name"), h("th", {scope: "col"}, "Latest versions"),
        h("th", {scope: "col"}, "Aliases"), h("th", {scope: "col"}, "Tags"), h("th", {scope: "col", class: "num"}, "Last updated"))),
      body),
    h("div", {class: "toolbar models-pager"}, prev, next, summary)));

  let token = 0;
  async function load() {
    const mine = ++token;
    const params = {max_results: state.size, order_by: ORDERS[state.order], page_token: state.token || null,
                    filter: state.q ? `name ILIKE '%${likeLiteral(state.q)}%'` : null};
    const data = await mlflowGet("registered-models/search", params);
    if (mine !== token) return; // a newer search answered first
    const models = data.registered_models || [];
    mount(body, models.length ? models.map(row)
      : h("tr", {}, h("td", {colspan: 5, class: "muted empty"}, state.q ? `No model's name contains "${state.q}".` : "No registered models yet.")));
    const page = state.previous.length + 1;
    summary.textContent = models.length ? `Page ${page}: ${models.length} model${models.length === 1 ? "" : "s"}` : "";
    prev.disabled = !state.previous.length;
    next.disabled = !data.next_page_token;
    next.onclick = () => { state.previous.push(state.token); state.token = data.next_page_token; changed(); };
  }
  function changed() {
    route.update({q: state.q, order: state.order === "name" ? null : state.order, page: state.token || null});
    load().then(() => showError(null), (err) => showError(err.message || String(err)));
  }
  prev.onclick = () => { state.token = state.previous.pop() || ""; changed(); };
  search.addEventListener("input", debounce(() => { state.q = search.value.trim(); state.token = ""; state.previous = []; changed(); }, 250));
  order.addEventListener("change", () => { state.order = order.value; state.token = ""; state.previous = []; changed(); });
  await load();
}
