// "Runs in progress": polls the section's JSON (GET /api/progress) every few seconds while a run
// goes, and every half minute otherwise to notice a new one. The server sends every text already
// formatted (run.text, keyed like the template's data-field attributes) and the bar's geometry
// (run.bar); this script only places them, as text (textContent) and SVG attributes, never as HTML.
(function () {
  "use strict";

  const ACTIVE_MS = 5000;
  const IDLE_MS = 30000;
  const section = document.getElementById("progress");
  if (!section) return;
  const list = document.getElementById("progress-runs");
  const none = document.getElementById("progress-none");
  const time = document.getElementById("progress-time");
  const template = document.getElementById("progress-run");

  // Run links open in the Airflow UI itself (monitor.js); a link without a known run stays text.
  function wire(link) {
    if (window.imrOpenInAirflow) link.addEventListener("click", window.imrOpenInAirflow);
  }

  function fill(node, run) {
    node.dataset.runId = run.run_id;
    for (const el of node.querySelectorAll("[data-field]")) {
      const value = run.text[el.dataset.field];
      el.textContent = value === undefined || value === null ? "" : String(value);
    }
    const link = node.querySelector("a.run-link");
    if (run.run_url) link.setAttribute("href", run.run_url);
    else link.removeAttribute("href");
    for (const seg of run.bar) {
      const rect = node.querySelector('rect[data-seg="' + seg.state + '"]');
      if (!rect) continue;
      rect.setAttribute("x", String(seg.x));
      rect.setAttribute("width", String(seg.width));
      const title = rect.querySelector("title");
      if (title) title.textContent = seg.title;
    }
  }

  function render(body) {
    const existing = new Map();
    for (const node of list.querySelectorAll(".run-progress")) existing.set(node.dataset.runId, node);
    const nodes = body.runs.map((run) => {
      let node = existing.get(run.run_id);
      if (!node) {
        node = template.content.firstElementChild.cloneNode(true);
        wire(node.querySelector("a.run-link"));
      }
      fill(node, run);
      return node;
    });
    list.replaceChildren(...nodes);
    none.hidden = nodes.length > 0;
    section.dataset.active = nodes.length > 0 ? "true" : "false";
    if (time) time.textContent = body.as_of_text;
  }

  async function poll() {
    try {
      const response = await fetch(section.dataset.url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) render(await response.json());
    } catch (err) {
      // The api-server restarting, a network blip: keep what is shown, try again.
    }
    setTimeout(poll, section.dataset.active === "true" ? ACTIVE_MS : IDLE_MS);
  }

  for (const link of list.querySelectorAll("a.run-link")) wire(link);
  setTimeout(poll, section.dataset.active === "true" ? ACTIVE_MS : IDLE_MS);
})();
