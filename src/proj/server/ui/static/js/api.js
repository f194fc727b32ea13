// The REST calls the UI makes: MLflow's own endpoints (what every MLflow client uses) and proj's UI endpoints.

const MLFLOW = "ajax-api/2.0/mlflow";
const PROJ = "ajax-api/2.0/proj";

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) q.append(key, String(item));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

async function send(url, options = {}) {
  const response = await fetch(url, {headers: {"Accept": "application/json"}, ...options});
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch { data = null; }
  if (!response.ok) {
    throw new ApiError(response.status, data?.error_code || "HTTP_" + response.status,
                       data?.message || `${response.status} ${response.statusText}: ${url}`);
  }
  if (data === null) throw new ApiError(response.status, "BAD_RESPONSE", `not JSON: ${url}`);
  return data;
}

/** GET an MLflow endpoint: mlflowGet("runs/get", {run_id}). */
export function mlflowGet(path, params) { return send(`${MLFLOW}/${path}${query(params)}`); }

/** POST an MLflow endpoint with a JSON body: mlflowPost("runs/search", {experiment_ids: ["0"]}). */
export function mlflowPost(path, body) {
  return send(`${MLFLOW}/${path}`, {method: "POST", headers: {"Content-Type": "application/json", "Accept": "application/json"},
                                    body: JSON.stringify(body || {})});
}

/** GET one of proj's UI endpoints: projGet("runs/table", {experiment_ids: ["0"], limit: 100}). */
export function projGet(path, params) { return send(`${PROJ}/${path}${query(params)}`); }

/** The URL of a proj UI endpoint (for links: CSV download, images). */
export function projUrl(path, params) { return `${PROJ}/${path}${query(params)}`; }

/** The URL of a run's artifact file as MLflow's UI fetches it. */
export function artifactUrl(runId, path) { return `get-artifact${query({run_uuid: runId, path})}`; }
