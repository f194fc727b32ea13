// #/models/<name>/versions/<v>: one registered version: its fields, stage, aliases, tags and source; its lineage
// (proj's registry/lineage: version -> run -> commit -> environment lock -> inputs and datasets -> the model's
// flavors -> metrics -> reproduction) as a chain of steps with links; its history (the events of that version).
import {h, mount, when, number, bytes} from "../dom.js";
import {mlflowGet, projGet} from "../api.js";
import {aliasChip, history, millis, modelHref, protectedKeys, runHref, stageBadge, tagList, timeline} from "../registry.js";

const ARTIFACTS = "ajax-api/2.0/mlflow-artifacts/artifacts/";

function short(digest, n = 12) {
  return digest ? h("code", {title: digest, class: "digest"}, String(digest).slice(0, n)) : h("span", {class: "muted"}, "–");
}

function fields(pairs) {
  return h("dl", {class: "kv"}, pairs.filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
}

function step(key, title, ...content) {
  return h("li", {class: "step", dataset: {step: key}}, h("h3", {}, title), ...content);
}

/** The flavor names in an MLmodel file's text (its top-level `flavors:` mapping; no YAML library needed). */
export function flavorsOf(text) {
  const out = [];
  let inside = false;
  for (const line of String(text).split(/\r?\n/)) {
    if (/^flavors:\s*$/.test(line)) { inside = true; continue; }
    if (inside && /^\S/.test(line)) break;
    const m = inside && /^ {2}([^\s:][^:]*):/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/** The version's flavors: from the lineage when the server gives them, else from the MLmodel of the version's own
 * stored copy (MLflow's download URI, listed then read through the artifact proxy: nothing is asked for that the
 * listing does not show, so a version without files costs no failed request). */
async function flavors(lineage, name, version) {
  const given = lineage?.flavors || lineage?.model?.flavors;
  if (Array.isArray(given)) return given;
  if (given && typeof given === "object") return Object.keys(given);
  if (lineage?.version && (!lineage.version.files || lineage.version.intact === false)) return null;
  const {artifact_uri: uri} = await mlflowGet("model-versions/get-download-uri", {name, version});
  if (!uri || !uri.startsWith("mlflow-artifacts:/")) return null;
  const path = uri.slice("mlflow-artifacts:/".length).replace(/^\/+|\/+$/g, "");
  const listing = await (await fetch(`${ARTIFACTS.replace(/\/$/, "")}?path=${encodeURIComponent(path)}`)).json();
  if (!(listing.files || []).some((f) => f.path === "MLmodel" && !f.is_dir)) return null;
  const response = await fetch(`${ARTIFACTS}${path.split("/").map(encodeURIComponent).join("/")}/MLmodel`);
  return response.ok ? flavorsOf(await response.text()) : null;
}

function versionStep(data, mv) {
  const v = data.version || {};
  const integrity = v.intact === false ? h("span", {class: "bad"}, `damaged: ${(v.problems || []).join("; ")}`)
    : v.intact ? h("span", {class: "ok"}, "intact") : null;
  return step("version", `Registered version v${mv.version}`, fields([
    ["Files", v.files !== undefined ? `${v.files} file${v.files === 1 ? "" : "s"}, ${bytes(v.size)}` : null],
    ["Files sha256", v.files_sha256 ? short(v.files_sha256, 16) : null], ["Stored copy", integrity],
    ["Source", mv.source ? h("code", {}, mv.source) : null]]));
}

function runStep(data, run) {
  const r = data.run;
  if (!r) {
    return step("run", "Run", h("p", {class: "muted"}, data.run_missing
      ? `Run ${data.run_missing} is gone; the version's files are kept in the registry's own copy.` : "Not from a run."));
  }
  const name = run?.info?.run_name;
  const params = Object.entries(r.params || {});
  return step("run", "Run", fields([
    ["Run", h("a", {href: runHref(r.id), class: "run-link mono"}, r.id, name ? ` (${name})` : "")],
    ["Status", r.status], ["Experiment", r.experiment], ["Entry point", r.entry_point],
    ["Command", r.command ? h("code", {class: "command"}, r.command) : null], ["Started", r.start_time ? when(millis(r.start_time)) : null],
    ["Params", params.length ? h("ul", {class: "tags"}, params.map(([k, value]) => h("li", {class: "tag"}, `${k}=${value}`))) : null]]));
}

function sourceStep(data) {
  const s = data.source || {};
  const patch = s.patch ? [bytes(s.patch.bytes), s.patch.files !== null && s.patch.files !== undefined ? `, ${s.patch.files} file(s)` : "",
    s.patch.sha256 ? [", sha256 ", short(s.patch.sha256)] : "", s.patch.intact === false ? h("span", {class: "bad"}, " (patch missing or changed)") : ""] : null;
  return step("source", "Source", fields([
    ["Commit", s.commit ? h("code", {class: "commit", title: s.commit}, s.commit) : h("span", {class: "muted"}, "no commit (not a git checkout)")],
    ["Branch", s.branch], ["Remote", s.remote], ["Version", s.version], ["Project", s.uri ? h("code", {}, s.uri) : null],
    ["Working tree", s.dirty ? h("span", {class: "warn"}, "dirty: uncommitted changes recorded as a patch") : "clean"],
    ["Patch", patch]]));
}

function envStep(data) {
  const e = data.environment || {};
  return step("environment", "Environment", fields([
    ["Backend", e.backend], ["Python", e.python], ["Lock", e.lock_format],
    ["Lock digest", e.lock_sha256 ? short(e.lock_sha256, 16) : null], ["Packages", e.packages ?? null]]));
}

function inputsStep(data, run) {
  const inputs = Object.entries(data.inputs || {});
  const datasets = run?.inputs?.dataset_inputs || [];
  const rows = [
    ...inputs.map(([key, i]) => h("li", {dataset: {input: key}}, h("strong", {}, key), `: ${i.kind || "input"} `,
      i.path ? h("code", {}, i.path) : "", i.sha256 ? [" sha256 ", short(i.sha256)] : "", i.bytes !== null && i.bytes !== undefined ? ` (${bytes(i.bytes)})` : "")),
    ...datasets.map((d) => {
      const context = (d.tags || []).find((t) => t.key === "mlflow.data.context")?.value;
      const ds = d.dataset || {};
      return h("li", {dataset: {dataset: ds.name || ""}}, h("strong", {}, ds.name || "dataset"), " dataset",
        ds.digest ? [" digest ", short(ds.digest)] : "", context ? ` (${context})` : "", ds.source_type ? `, ${ds.source_type}` : "");
    })];
  return step("inputs", "Inputs and datasets", rows.length ? h("ul", {class: "inputs"}, rows) : h("p", {class: "muted"}, "None recorded."));
}

function modelStep(found) {
  const body = found === null ? h("p", {class: "muted"}, "Flavors unknown (no MLmodel in the version's files).")
    : h("ul", {class: "flavors"}, found.map((f) => h("li", {class: "flavor"}, h("code", {}, f))));
  return step("model", "Model", body);
}

function metricsStep(data) {
  const metrics = Object.entries(data.metrics || {});
  return step("metrics", "Metrics", metrics.length
    ? h("dl", {class: "kv"}, metrics.map(([k, value]) => [h("dt", {}, k), h("dd", {class: "num"}, number(value))]))
    : h("p", {class: "muted"}, "None."));
}

function reproducedStep(data) {
  const r = data.reproduced || {};
  return step("reproduced", "Reproduced", r.verdict
    ? fields([["Verdict", h("span", {class: `verdict verdict-${r.verdict}`}, r.verdict)],
              ["By run", r.run_id ? h("a", {href: runHref(r.run_id), class: "mono"}, r.run_id) : null],
              ["When", r.time ? when(millis(r.time)) : null]])
    : h("p", {class: "muted"}, data.run ? "Never reproduced." : "–"));
}

export async function render(main, route) {
  const [name, version] = route.args;
  const [{model_version: mv}, events, lineage] = await Promise.all([
    mlflowGet("model-versions/get", {name, version}),
    history(name).catch((err) => err), // the page shows the version even when the history cannot be read
    projGet("registry/lineage", {name, version}).catch((err) => err),
  ]);
  const runId = mv.run_id || (lineage instanceof Error ? null : lineage?.run?.id);
  const [run, found] = await Promise.all([
    runId ? mlflowGet("runs/get", {run_id: runId}).then((d) => d.run).catch(() => null) : null,
    flavors(lineage instanceof Error ? null : lineage, name, version).catch(() => null),
  ]);
  const all = Array.isArray(events) ? events : [];
  const protectedSet = protectedKeys(all);
  const mine = all.filter((e) => e.version === Number(version));
  const aliases = mv.aliases || [];
  mount(main, h("div", {class: "registry registry-version"},
    h("nav", {class: "crumbs", "aria-label": "Breadcrumb"}, h("a", {href: "#/models"}, "Models"), " / ",
      h("a", {href: modelHref(mv.name)}, mv.name), " / ", h("span", {"aria-current": "page"}, `Version ${mv.version}`)),
    h("h1", {class: "model-title"}, `${mv.name} v${mv.version} `, stageBadge(mv.current_stage),
      aliases.map((a) => [" ", aliasChip(a, {protectedAlias: protectedSet.has(a)})])),
    mv.description ? h("p", {class: "description"}, mv.description) : null,
    h("dl", {class: "kv version-fields"},
      h("dt", {}, "Stage"), h("dd", {}, stageBadge(mv.current_stage), protectedSet.has(mv.current_stage) ? h("span", {class: "protected"}, " protected") : ""),
      h("dt", {}, "Aliases"), h("dd", {class: "aliases"}, aliases.length
        ? aliases.map((a) => aliasChip(a, {protectedAlias: protectedSet.has(a)})) : h("span", {class: "muted"}, "none")),
      h("dt", {}, "Status"), h("dd", {}, mv.status || "", mv.status_message ? ` (${mv.status_message})` : ""),
      h("dt", {}, "Created"), h("dd", {}, when(mv.creation_timestamp)),
      h("dt", {}, "Last updated"), h("dd", {}, when(mv.last_updated_timestamp)),
      h("dt", {}, "Source"), h("dd", {}, h("code", {}, mv.source || "")),
      h("dt", {}, "Source run"), h("dd", {}, mv.run_id ? h("a", {href: runHref(mv.run_id), class: "mono"}, mv.run_id) : h("span", {class: "muted"}, "none")),
      h("dt", {}, "Tags"), h("dd", {}, tagList(mv.tags))),
    h("div", {class: "version-body"},
      h("section", {class: "lineage", "aria-labelledby": "lineage-heading"},
        h("h2", {id: "lineage-heading"}, "Lineage"),
        lineage instanceof Error ? h("p", {class: "muted"}, `The lineage could not be read: ${lineage.message}`)
          : h("ol", {class: "chain", "aria-label": "Lineage, from the version to its run and what made it"},
              versionStep(lineage, mv), runStep(lineage, run), lineage.run ? [sourceStep(lineage), envStep(lineage), inputsStep(lineage, run)] : null,
              modelStep(found), lineage.run ? [metricsStep(lineage), reproducedStep(lineage)] : null)),
      h("section", {class: "history", "aria-labelledby": "history-heading"},
        h("h2", {id: "history-heading"}, "History"),
        Array.isArray(events) ? timeline(mine, mv.name, {showVersion: false})
          : h("p", {class: "muted"}, `The history could not be read: ${events.message || events}`)))));
}
