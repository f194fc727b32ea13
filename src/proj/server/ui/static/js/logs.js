// A run's log (stdout, stderr or env-build) through runs/log: the last 64 KiB first, "Load earlier" for the
// part before it, and a live tail (polling next_offset) while the run is running.
import {bytes, h, mount} from "./dom.js";
import {projGet} from "./api.js";

const CHUNK = 65536;
const POLL_MS = 1200;
const BOTTOM_SLACK = 24; // px: "at the bottom" even when a line is half visible
const KEEP_BYTES = 4 << 20; // a tail that follows a long run drops its oldest part ("Load earlier" brings it back)

/**
 * logViewer(el, {runId, stream, onSize}) fills `el` and returns a cleanup function (stops the live tail);
 * `onSize(bytes)` hears the file's size as it grows.
 * `el.dataset.live` is "true" while the tail polls; `el.dataset.start` / `el.dataset.end` are the byte range shown.
 */
export function logViewer(el, {runId, stream, onSize = () => {}}) {
  let stopped = false, timer = null, start = 0, next = 0, size = 0;
  const chunks = []; // [{node, from}] in file order: the text nodes shown and the byte offset each starts at
  const pre = h("pre", {class: "log", tabindex: "0", "aria-label": `${stream} log`});
  const info = h("span", {class: "muted log-info"});
  const live = h("span", {class: "log-live", hidden: true}, h("span", {class: "dot", "aria-hidden": "true"}), "live");
  const earlier = h("button", {type: "button", hidden: true, onclick: loadEarlier}, "Load earlier");
  const bottom = h("button", {type: "button", onclick: () => { pre.scrollTop = pre.scrollHeight; }}, "Jump to end");
  const message = h("p", {class: "muted", hidden: true});
  mount(el, h("div", {class: "toolbar"}, earlier, bottom, info, live), message, pre);

  function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight <= BOTTOM_SLACK; }

  function describe() {
    info.textContent = size === 0 ? "empty" : start > 0
      ? `showing the last ${bytes(next - start)} of ${bytes(size)}` : `${bytes(size)}`;
    earlier.hidden = start <= 0;
    el.dataset.start = String(start);
    el.dataset.end = String(next);
    onSize(size);
  }

  function setLive(on) {
    live.hidden = !on;
    el.dataset.live = on ? "true" : "false";
  }

  async function loadEarlier() {
    if (start <= 0) return;
    const from = Math.max(0, start - CHUNK);
    earlier.disabled = true;
    try {
      const part = await projGet("runs/log", {run_id: runId, stream, offset: from, limit: start - from});
      if (stopped) return;
      const before = pre.scrollHeight;
      const node = document.createTextNode(part.text);
      pre.prepend(node);
      chunks.unshift({node, from: part.offset});
      pre.scrollTop += pre.scrollHeight - before; // keep the lines the reader was looking at in place
      start = part.offset;
      size = Math.max(size, part.size);
      describe();
    } catch (err) {
      showMessage(`Could not load the earlier part: ${err.message}`);
    } finally {
      earlier.disabled = false;
    }
  }

  function showMessage(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  function append(text, from) {
    if (!text) return;
    const follow = atBottom();
    const node = document.createTextNode(text);
    pre.append(node);
    chunks.push({node, from});
    if (follow) {
      while (chunks.length > 1 && next - start > KEEP_BYTES) { chunks.shift().node.remove(); start = chunks[0].from; }
      pre.scrollTop = pre.scrollHeight;
    }
  }

  async function poll() {
    timer = null;
    if (stopped) return;
    if (document.hidden) { timer = setTimeout(poll, POLL_MS); return; } // resumes when the tab is shown again
    let more = false, delay = POLL_MS;
    try {
      const part = await projGet("runs/log", {run_id: runId, stream, offset: next, limit: CHUNK});
      if (stopped) return;
      next = part.next_offset;
      append(part.text, part.offset);
      size = Math.max(part.size, next);
      describe();
      showMessage("");
      // after the run ends, keep reading until the file's end: its last lines land after the status changes
      more = part.running || next < part.size;
      // a backlog (the tail fell behind a fast writer) is read at once, then the tail settles to polling
      if (next < part.size) delay = 0;
      setLive(part.running);
    } catch (err) {
      if (stopped) return;
      showMessage(`Live tail paused: ${err.message}`);
      more = true;
      delay = POLL_MS * 3;
    }
    if (more && !stopped) timer = setTimeout(poll, delay);
  }

  (async () => {
    try {
      const last = await projGet("runs/log", {run_id: runId, stream, offset: -CHUNK, limit: CHUNK});
      if (stopped) return;
      start = last.offset;
      next = last.next_offset;
      size = last.size;
      const node = document.createTextNode(last.text);
      pre.append(node);
      chunks.push({node, from: last.offset});
      pre.scrollTop = pre.scrollHeight;
      describe();
      if (!last.text && !last.running) showMessage(`No ${stream} output.`);
      setLive(last.running);
      if (last.running || next < last.size) timer = setTimeout(poll, POLL_MS);
    } catch (err) {
      if (!stopped) showMessage(err.status === 404 ? `This run has no ${stream} log.` : `Could not read the log: ${err.message}`);
    }
  })();

  return () => { stopped = true; if (timer) clearTimeout(timer); };
}
