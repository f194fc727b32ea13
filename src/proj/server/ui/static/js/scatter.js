// A scatter plot in SVG of two columns (params or metrics), one point per run that has both values.
import {highlight} from "./parallel.js";
import {scaleFor, svg} from "./plotaxes.js";

/** Draw into `el`: x and y are {label, values: [one per run]}, runs [{id, label, color}]. */
export function scatterPlot(el, {x, y, runs, height = 340}) {
  el.replaceChildren();
  const width = Math.max(360, Math.min(el.clientWidth || 640, 760));
  const pad = {left: 70, right: 20, top: 16, bottom: 44};
  const plotW = width - pad.left - pad.right, plotH = height - pad.top - pad.bottom;
  const sx = scaleFor(x.values), sy = scaleFor(y.values);
  const px = (p) => pad.left + (0.04 + 0.92 * p) * plotW;
  const py = (p) => pad.top + (1 - (0.04 + 0.92 * p)) * plotH;
  const root = svg("svg", {class: "scatter", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                           "aria-label": `Scatter of ${y.label} against ${x.label} for ${runs.length} runs`});
  const grid = svg("g", {class: "sc-axes"},
                   svg("line", {class: "sc-axis", x1: pad.left, x2: pad.left, y1: pad.top, y2: pad.top + plotH}),
                   svg("line", {class: "sc-axis", x1: pad.left, x2: pad.left + plotW, y1: pad.top + plotH, y2: pad.top + plotH}),
                   svg("text", {class: "sc-label", x: pad.left + plotW / 2, y: height - 6, "text-anchor": "middle"}, x.label),
                   svg("text", {class: "sc-label", x: 14, y: pad.top + plotH / 2, "text-anchor": "middle",
                                transform: `rotate(-90 14 ${pad.top + plotH / 2})`}, y.label));
  for (const [p, label] of sx.ticks.slice(0, 12)) {
    grid.append(svg("line", {class: "sc-grid", x1: px(p), x2: px(p), y1: pad.top, y2: pad.top + plotH}),
                svg("text", {class: "sc-tick", x: px(p), y: pad.top + plotH + 16, "text-anchor": "middle"}, label));
  }
  for (const [p, label] of sy.ticks.slice(0, 12)) {
    grid.append(svg("line", {class: "sc-grid", x1: pad.left, x2: pad.left + plotW, y1: py(p), y2: py(p)}),
                svg("text", {class: "sc-tick", x: pad.left - 6, y: py(p) + 4, "text-anchor": "end"}, label));
  }
  const points = svg("g", {class: "sc-points"});
  let count = 0;
  runs.forEach((run, r) => {
    const a = sx.pos(x.values[r]), b = sy.pos(y.values[r]);
    if (a === null || b === null) return; // a run without one of the two values has no place here
    count++;
    const dot = svg("circle", {class: "sc-point", cx: px(a).toFixed(1), cy: py(b).toFixed(1), r: 5, fill: run.color,
                               "data-run": run.id},
                    svg("title", {}, `${run.label}\n${x.label}: ${x.values[r]}\n${y.label}: ${y.values[r]}`));
    dot.addEventListener("mouseenter", () => highlight(root, run.id));
    dot.addEventListener("mouseleave", () => highlight(root, null));
    dot.addEventListener("click", () => { location.hash = `#/runs/${encodeURIComponent(run.id)}`; });
    points.append(dot);
  });
  grid.append(...grid.querySelectorAll(".sc-axis")); // the axes over the grid lines
  root.append(grid, points);
  el.append(root);
  if (count < runs.length) {
    el.append(Object.assign(document.createElement("p"), {className: "muted",
      textContent: `${runs.length - count} run${runs.length - count === 1 ? "" : "s"} without both values not shown.`}));
  }
  el.dataset.points = String(count);
}
