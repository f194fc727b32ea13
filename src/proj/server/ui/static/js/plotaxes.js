// Scales shared by the SVG plots (parallel coordinates, scatter): a column of run values read as numbers when
// every present value is one, else as categories, mapped to [0, 1].
import {number} from "./dom.js";

export const SVG = "http://www.w3.org/2000/svg";

/** An SVG element: svg("circle", {cx: 1, r: 2}, child...). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A value as a number, or null (absent, empty, NaN/Infinity, text). */
export function numeric(value) {
  if (value === null || value === undefined || value === "") return null;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

/** Round tick values between lo and hi (about `count` of them). */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A scale for one column: pos(value) in [0, 1] or null when the run has no value; labels for its ticks. */
export function scaleFor(values) {
  const present = values.filter((v) => v !== null && v !== undefined && v !== "");
  const nums = present.map(numeric);
  if (present.length && nums.every((n) => n !== null)) {
    let lo = Math.min(...nums), hi = Math.max(...nums);
    if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
    return {kind: "number", lo, hi, pos: (v) => { const n = numeric(v); return n === null ? null : (n - lo) / (hi - lo); },
            ticks: ticks(lo, hi).map((t) => [(t - lo) / (hi - lo), number(t)])};
  }
  const cats = [...new Set(present.map(String))].sort();
  const at = (i) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  return {kind: "category", cats, pos: (v) => { const i = cats.indexOf(String(v)); return v === null || v === undefined || i < 0 ? null : at(i); },
          ticks: cats.map((c, i) => [at(i), c.length > 16 ? c.slice(0, 15) + "…" : c])};
}
