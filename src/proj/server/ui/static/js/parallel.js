// Parallel coordinates in SVG: one vertical axis per column (a param or a metric), one path per run; hovering
// a path (or its legend entry) highlights that run.
import {scaleFor, svg} from "./plotaxes.js";

/** Draw into `el`: columns [{key, label, values: [one per run]}], runs [{id, label, color}]. */
export function parallelCoordinates(el, {columns, runs, height = 320}) {
  el.replaceChildren();
  if (columns.length < 2) {
    el.append(Object.assign(document.createElement("p"), {className: "muted", textContent: "Choose two or more columns."}));
    el.dataset.paths = "0";
    return;
  }
  const width = Math.max(480, el.clientWidth || 900);
  const pad = {left: 60, right: 60, top: 28, bottom: 24};
  const step = (width - pad.left - pad.right) / (columns.length - 1);
  const plotH = height - pad.top - pad.bottom;
  const xAt = (c) => pad.left + c * step;
  const yAt = (p) => pad.top + (1 - p) * plotH;
  const scales = columns.map((c) => scaleFor(c.values));
  const root = svg("svg", {class: "parallel", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                           "aria-label": `Parallel coordinates of ${runs.length} runs over ${columns.map((c) => c.label).join(", ")}`});
  const lines = svg("g", {class: "pc-lines"});
  runs.forEach((run, r) => {
    let d = "", pen = false;
    columns.forEach((col, c) => {
      const p = scales[c].pos(col.values[r]);
      if (p === null) { pen = false; return; } // an absent value breaks the line there
      d += `${pen ? "L" : "M"}${xAt(c).toFixed(1)},${yAt(p).toFixed(1)}`;
      pen = true;
    });
    const path = svg("path", {class: "pc-line", d: d || "M0,0", stroke: run.color, "data-run": run.id},
                     svg("title", {}, `${run.label}\n${columns.map((col, c) => `${col.label}: ${col.values[r] ?? "—"}`).join("\n")}`));
    path.addEventListener("mouseenter", () => highlight(root, run.id));
    path.addEventListener("mouseleave", () => highlight(root, null));
    lines.append(path);
  });
  const axes = svg("g", {class: "pc-axes"});
  columns.forEach((col, c) => {
    const x = xAt(c);
    const axis = svg("g", {class: "pc-axis"},
                     svg("line", {x1: x, x2: x, y1: pad.top, y2: pad.top + plotH}),
                     svg("text", {class: "pc-label", x, y: pad.top - 10, "text-anchor": "middle"}, col.label));
    for (const [p, label] of thin(scales[c].ticks)) {
      const y = yAt(p);
      axis.append(svg("line", {class: "pc-tick", x1: x - 4, x2: x, y1: y, y2: y}),
                  svg("text", {class: "pc-tick-label", x: x - 6, y: y + 4, "text-anchor": "end"}, label));
    }
    axes.append(axis);
  });
  root.append(axes, lines);
  el.append(root);
  el.dataset.paths = String(runs.length);
}

/** At most 8 tick labels on an axis (a column of many categories would overlap). */
function thin(ticks) {
  if (ticks.length <= 8) return ticks;
  const every = Math.ceil(ticks.length / 8);
  return ticks.filter((_, i) => i % every === 0 || i === ticks.length - 1);
}

/** Highlight one run's path (null: none) in an SVG plot. */
export function highlight(root, runId) {
  root.classList.toggle("has-active", runId !== null);
  for (const el of root.querySelectorAll("[data-run]")) el.classList.toggle("active", el.dataset.run === runId);
}
