// A unified diff (git's format) as a table: old and new line numbers, added and removed lines highlighted.
import {bytes, h} from "./dom.js";

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

/** The kind of one line of a unified diff: "file" (headers), "hunk", "add", "del", "note" or "ctx". */
export function lineKind(line) {
  if (line.startsWith("diff ") || line.startsWith("index ") || line.startsWith("--- ") || line.startsWith("+++ ") ||
      line.startsWith("new file mode") || line.startsWith("deleted file mode") || line.startsWith("similarity ") ||
      line.startsWith("rename ") || line.startsWith("old mode") || line.startsWith("new mode") ||
      line.startsWith("Binary files")) return "file";
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  if (line.startsWith("\\")) return "note"; // "\ No newline at end of file"
  return "ctx";
}

/**
 * diffView(text, {truncated, size}) -> an element showing the diff. Line numbers follow the hunk headers;
 * a header line inside a hunk ("--- a/x") is only a header when no hunk lines remain (a removed line
 * "-- comment" reads "--- comment" in the patch), so the hunk's counts decide.
 */
export function diffView(text, {truncated = false, size = null} = {}) {
  const rows = [];
  let oldNo = 0, newNo = 0, oldLeft = 0, newLeft = 0;
  const lines = String(text || "").split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  let files = 0, added = 0, removed = 0;
  for (const line of lines) {
    let kind = lineKind(line);
    if ((oldLeft > 0 || newLeft > 0) && (kind === "file" || kind === "hunk")) {
      // still inside a hunk: these are content lines that only look like headers
      kind = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : kind === "hunk" ? "hunk" : "ctx";
    }
    let left = "", right = "";
    if (kind === "hunk") {
      const m = HUNK.exec(line);
      if (m) {
        oldNo = Number(m[1]); newNo = Number(m[2]);
        const counts = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
        oldLeft = counts[1] === undefined ? 1 : Number(counts[1]);
        newLeft = counts[2] === undefined ? 1 : Number(counts[2]);
      }
    } else if (kind === "add") { right = newNo++; newLeft--; added++; }
    else if (kind === "del") { left = oldNo++; oldLeft--; removed++; }
    else if (kind === "ctx" && (oldLeft > 0 || newLeft > 0)) { left = oldNo++; right = newNo++; oldLeft--; newLeft--; }
    else if (kind === "file" && line.startsWith("diff ")) files++;
    rows.push(h("tr", {class: `diff-${kind}`},
      h("td", {class: "ln", "aria-hidden": "true"}, String(left)),
      h("td", {class: "ln", "aria-hidden": "true"}, String(right)),
      h("td", {class: "code"}, kind === "add" ? h("ins", {}, line) : kind === "del" ? h("del", {}, line) : line)));
  }
  const summary = h("p", {class: "diff-summary muted"},
    `${files || (lines.length ? 1 : 0)} file${files === 1 ? "" : "s"} changed, `,
    h("span", {class: "diff-added"}, `+${added}`), " ", h("span", {class: "diff-removed"}, `-${removed}`),
    truncated ? ` — truncated: the first part of a ${size === null ? "larger" : bytes(size)} patch` : "");
  if (!lines.length) return h("p", {class: "muted"}, "The patch is empty.");
  return h("div", {class: "diffview"}, summary,
    h("div", {class: "diff-scroll"}, h("table", {class: "patch-diff", "aria-label": "Uncommitted changes"}, h("tbody", {}, rows))));
}
