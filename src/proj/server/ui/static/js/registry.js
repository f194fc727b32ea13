// What the three registry pages share: links to models and versions, name filters, stage and alias badges,
// the history (proj's append-only registry events) and its timeline.
import {h, when} from "./dom.js";
import {projGet} from "./api.js";

export const STAGES = ["Production", "Staging", "None", "Archived"];

/** "#/models/<name>" with the name encoded (names may hold spaces, '#', '%', '?'; the router decodes). */
export function modelHref(name) { return `#/models/${encodeURIComponent(name)}`; }

export function versionHref(name, version) {
  return `#/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(String(version))}`;
}

export function runHref(runId) { return `#/runs/${encodeURIComponent(runId)}`; }

/** A LIKE pattern matching `text` literally (MLflow's grammar has no escape inside quotes: a quote becomes `_`,
 * any one character, and the caller keeps exact matches). */
export function likeLiteral(text) {
  return String(text).replace(/[\\%_]/g, (c) => "\\" + c).replace(/['"]/g, "_");
}

/** A filter selecting exactly the model `name`: quoted the way the name allows, else a LIKE the caller narrows. */
export function nameFilter(name) {
  if (!name.includes("'")) return {filter: `name = '${name}'`, exact: false};
  if (!name.includes('"')) return {filter: `name = "${name}"`, exact: false};
  return {filter: `name LIKE '${likeLiteral(name)}'`, exact: true};
}

export function stageBadge(stage) {
  const value = stage || "None";
  return h("span", {class: `stage stage-${value.toLowerCase()}`, title: `stage ${value}`}, value);
}

/** An alias chip; a protected one carries a lock and says so to screen readers. */
export function aliasChip(alias, {version = null, protectedAlias = false, name = null} = {}) {
  const text = version === null ? `@${alias}` : `@${alias} → v${version}`;
  const attrs = {class: "alias" + (protectedAlias ? " alias-protected" : ""), dataset: {alias},
                 title: protectedAlias ? `alias ${alias} is protected: moving it needs a reason` : `alias ${alias}`};
  const body = [text, protectedAlias ? h("span", {class: "protected"}, " protected") : null];
  if (name !== null && version !== null) return h("a", {...attrs, href: versionHref(name, version)}, body);
  return h("span", attrs, body);
}

export function tagList(tags) {
  const items = (tags || []).map((t) => h("li", {class: "tag", dataset: {key: t.key}},
                                            h("span", {class: "tag-key"}, t.key), "=", h("span", {class: "tag-value"}, t.value)));
  return items.length ? h("ul", {class: "tags"}, items) : h("span", {class: "muted"}, "none");
}

/** Event times arrive in ms (the UI contract); tolerate seconds too. */
export function millis(time) {
  const n = Number(time);
  return n < 1e11 ? n * 1000 : n;
}

/** One history event in the contract's shape, whatever spelling the server used (action/kind, field/key). */
export function normalise(event) {
  return {time: millis(event.time), user: event.user || "", action: event.action || event.kind || "",
          version: event.version === null || event.version === undefined ? null : Number(event.version),
          field: event.field ?? event.key ?? null, old: event.old ?? null, new: event.new ?? null,
          reason: event.reason || null, model: event.model || null};
}

/** The model's events, oldest first (renames followed: the server answers under the current name). */
export async function history(name) {
  const data = await projGet("registry/history", {name});
  return (data.events || []).map(normalise);
}

/** The aliases and stages protected now, replayed from the events (MLflow's JSON does not carry them). */
export function protectedKeys(events, data = null) {
  if (data && Array.isArray(data.protected)) return new Set(data.protected);
  const keys = new Set();
  for (const e of events) {
    if (e.action === "protected" && e.field) keys.add(e.field);
    else if (e.action === "unprotected" && e.field) keys.delete(e.field);
  }
  return keys;
}

function ver(value) {
  if (value === null || value === undefined || value === "") return "–";
  return /^\d+$/.test(String(value)) ? `v${value}` : String(value);
}

function clip(text, n = 80) {
  const s = String(text ?? "");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

/** An event in words: [what, from, to, detail] (from/to null when the action has none). */
export function describe(e) {
  const f = e.field;
  switch (e.action) {
    case "model_created": return ["model created", null, null];
    case "version_created": return ["version created", null, null, e.new ? `from ${e.new}` : null];
    case "stage": return ["stage", e.old ?? "None", e.new ?? "None"];
    case "alias_set": return [`alias @${f}`, e.old === null ? null : ver(e.old), ver(e.new ?? e.version)];
    case "alias_deleted": return [`alias @${f} deleted`, e.old === null ? null : ver(e.old), null];
    case "tag_set": return [`tag ${f}`, e.old, e.new];
    case "tag_deleted": return [`tag ${f} deleted`, e.old, null];
    case "description": return ["description", e.old === null ? null : clip(e.old), clip(e.new)];
    case "renamed": return ["renamed", e.old, e.new];
    case "protected": return [`protected ${f}`, null, null];
    case "unprotected": return [`protection lifted from ${f}`, null, null];
    case "version_deleted": return ["version deleted", null, null];
    case "model_deleted": return ["model deleted", null, null];
    default: return [String(e.action).replace(/_/g, " ") + (f ? ` ${f}` : ""), e.old, e.new];
  }
}

/** The history as a timeline: time, user, action, from -> to, reason; versions link to their page. */
export function timeline(events, name, {showVersion = true} = {}) {
  if (!events.length) return h("p", {class: "muted"}, "No events.");
  const deleted = new Set(events.filter((e) => e.action === "version_deleted").map((e) => e.version)); // no page to link
  return h("ol", {class: "timeline", "aria-label": "History"}, events.map((e) => {
    const [what, from, to, detail] = describe(e);
    const change = from === null && to === null ? null
      : h("span", {class: "change"}, h("span", {class: "from"}, from ?? "–"), h("span", {class: "arrow"}, " → "),
          h("span", {class: "to"}, to ?? "–"));
    return h("li", {class: `event event-${e.action}`, dataset: {action: e.action, version: e.version ?? ""}},
      h("time", {datetime: new Date(e.time).toISOString()}, when(e.time)),
      h("span", {class: "who"}, e.user),
      h("span", {class: "what"},
        showVersion && e.version !== null ? [deleted.has(e.version) ? h("span", {class: "gone", title: "deleted"}, `v${e.version}`)
          : h("a", {href: versionHref(name, e.version)}, `v${e.version}`), " "] : null,
        h("span", {class: "action"}, what), change ? [" ", change] : null, detail ? [" ", h("span", {class: "detail"}, detail)] : null),
      e.reason ? h("q", {class: "reason"}, e.reason) : null);
  }));
}
