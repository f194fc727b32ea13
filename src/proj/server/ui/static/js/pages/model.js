// #/models/<name>: one registered model: description, tags, aliases (protected ones marked), latest version per
// stage, every version (MLflow's model-versions/search) and the model's history timeline (proj's registry/history).
import {h, mount, when} from "../dom.js";
import {mlflowGet} from "../api.js";
import {showError} from "../app.js";
import {STAGES, aliasChip, history, nameFilter, protectedKeys, runHref, stageBadge, tagList, timeline,
        versionHref} from "../registry.js";

const PAGE = 200;

/** Every version of `name`, newest first, a page of the search at a time (`more` loads the next). */
function versionPager(name) {
  const {filter, exact} = nameFilter(name);
  let next = null, done = false;
  return {
    get done() { return done; },
    async more() {
      const data = await mlflowGet("model-versions/search", {filter, max_results: PAGE, order_by: ["version_number DESC"],
                                                            page_token: next});
      next = data.next_page_token || null;
      done = !next;
      const found = data.model_versions || [];
      return exact ? found.filter((v) => v.name === name) : found;
    },
  };
}

function versionRow(name, v, aliasesOf, protectedSet) {
  const aliases = aliasesOf.get(String(v.version)) || [];
  return h("tr", {dataset: {version: v.version}},
    h("td", {class: "version"}, h("a", {href: versionHref(name, v.version)}, `v${v.version}`)),
    h("td", {}, stageBadge(v.current_stage)),
    h("td", {}, aliases.length ? aliases.map((a) => aliasChip(a, {protectedAlias: protectedSet.has(a)})) : h("span", {class: "muted"}, "")),
    h("td", {class: "mono"}, v.run_id ? h("a", {href: runHref(v.run_id), title: v.source || v.run_id}, v.run_id.slice(0, 12))
      : h("span", {title: v.source || ""}, v.source || "")),
    h("td", {}, h("time", {}, when(v.creation_timestamp))),
    h("td", {}, h("span", {class: `vstatus vstatus-${String(v.status || "").toLowerCase()}`}, v.status || "")),
    h("td", {}, tagList(v.tags)));
}

function latestList(model) {
  const byStage = new Map((model.latest_versions || []).map((v) => [v.current_stage || "None", v]));
  const items = STAGES.filter((s) => byStage.has(s)).map((s) =>
    h("li", {dataset: {stage: s}}, stageBadge(s), " ", h("a", {href: versionHref(model.name, byStage.get(s).version)}, `v${byStage.get(s).version}`)));
  return items.length ? h("ul", {class: "latest"}, items) : h("span", {class: "muted"}, "no versions");
}

export async function render(main, route) {
  const name = route.args[0];
  const [{registered_model: model}, events] = await Promise.all([
    mlflowGet("registered-models/get", {name}),
    history(name).catch((err) => err), // the page still shows the model when the history cannot be read
  ]);
  const eventList = Array.isArray(events) ? events : [];
  const protectedSet = protectedKeys(eventList);
  const aliasesOf = new Map();
  for (const a of model.aliases || []) {
    const list = aliasesOf.get(String(a.version)) || [];
    list.push(a.alias);
    aliasesOf.set(String(a.version), list);
  }
  const protectedStages = STAGES.filter((s) => protectedSet.has(s));
  const body = h("tbody");
  const more = h("button", {type: "button", hidden: true}, "More versions");
  mount(main, h("div", {class: "registry registry-model"},
    h("nav", {class: "crumbs", "aria-label": "Breadcrumb"}, h("a", {href: "#/models"}, "Models"), " / ",
      h("span", {"aria-current": "page"}, model.name)),
    h("h1", {class: "model-title"}, model.name),
    h("p", {class: model.description ? "description" : "description muted"}, model.description || "No description."),
    h("dl", {class: "kv model-fields"},
      h("dt", {}, "Created"), h("dd", {}, when(model.creation_timestamp)),
      h("dt", {}, "Last updated"), h("dd", {}, when(model.last_updated_timestamp || model.creation_timestamp)),
      h("dt", {}, "Latest"), h("dd", {}, latestList(model)),
      h("dt", {}, "Aliases"), h("dd", {class: "aliases"}, (model.aliases || []).length
        ? model.aliases.map((a) => aliasChip(a.alias, {version: a.version, name: model.name, protectedAlias: protectedSet.has(a.alias)}))
        : h("span", {class: "muted"}, "none")),
      protectedStages.length ? [h("dt", {}, "Protected stages"), h("dd", {}, protectedStages.map((s) => [stageBadge(s), " "]))] : null,
      h("dt", {}, "Tags"), h("dd", {}, tagList(model.tags))),
    h("h2", {id: "versions-heading"}, "Versions"),
    h("table", {class: "grid versions", "aria-labelledby": "versions-heading"},
      h("thead", {}, h("tr", {}, ["Version", "Stage", "Aliases", "Source run", "Created", "Status", "Tags"].map((c) =>
        h("th", {scope: "col"}, c)))),
      body),
    more,
    h("h2", {id: "history-heading"}, "History"),
    Array.isArray(events) ? timeline(eventList, model.name)
      : h("p", {class: "muted"}, `The history could not be read: ${events.message || events}`)));

  const pager = versionPager(model.name);
  async function load() {
    const found = await pager.more();
    body.append(...found.map((v) => versionRow(model.name, v, aliasesOf, protectedSet)));
    if (!body.children.length) body.append(h("tr", {}, h("td", {colspan: 7, class: "muted"}, "No versions.")));
    more.hidden = pager.done;
  }
  more.addEventListener("click", () => load().catch((err) => showError(err.message || String(err))));
  await load();
}
