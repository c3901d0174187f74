// The monitor page's behaviour: selection, the reprocess button, and links into the Airflow UI.
// Data comes from the DOM (checkbox values, data-* attributes) and JSON responses and is written
// back only as text (textContent), never as HTML.
(function () {
  "use strict";

  const api = document.body.dataset.api;
  const picks = () => Array.from(document.querySelectorAll("input.pick"));
  const pickAll = document.getElementById("pick-all");
  const button = document.getElementById("reprocess");
  const status = document.getElementById("status");

  function refresh() {
    const boxes = picks();
    const n = boxes.filter((b) => b.checked).length;
    button.disabled = n === 0;
    button.textContent = n ? "Reprocess " + n + " selected" : "Reprocess selected";
    pickAll.checked = n > 0 && n === boxes.length;
    pickAll.disabled = boxes.length === 0;
  }

  function say(cls, parts) {
    status.className = cls;
    status.replaceChildren();
    for (const part of parts) {
      if (typeof part === "string") {
        status.append(document.createTextNode(part));
      } else {
        const a = document.createElement("a");
        a.href = part.href;
        a.className = "airflow-link";
        a.textContent = part.text;
        a.addEventListener("click", openInAirflow);
        status.append(a);
      }
    }
  }

  async function reprocess() {
    const chosen = picks().filter((b) => b.checked);
    const byBucket = new Map();
    for (const box of chosen) {
      const bucket = box.dataset.bucket;
      if (!byBucket.has(bucket)) byBucket.set(bucket, []);
      byBucket.get(bucket).push(box.value);
    }
    button.disabled = true;
    say("", ["Queueing " + chosen.length + " object(s)…"]);
    const parts = [];
    let failed = false;
    for (const [bucket, keys] of byBucket) {
      let body;
      let response;
      try {
        response = await fetch(api + "/reprocess", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ bucket: bucket, keys: keys }),
        });
        body = await response.json();
      } catch (err) {
        failed = true;
        parts.push("Could not queue: " + err + ". ");
        continue;
      }
      if (!response.ok) {
        failed = true;
        const detail = typeof body.detail === "string" ? body.detail : response.statusText;
        parts.push("Not queued (" + response.status + "): " + detail + ". ");
        continue;
      }
      for (const run of body.queued) {
        parts.push("Queued " + run.keys.length + " object(s) for reprocessing in run ");
        parts.push(run.run_url ? { href: run.run_url, text: run.dag_run_id } : run.dag_run_id);
        parts.push(" of " + run.dag_id + ". ");
        const queued = new Set(run.keys);
        for (const box of picks()) {
          if (box.dataset.bucket === run.bucket && queued.has(box.value)) {
            const row = box.closest("tr");
            const badge = row.querySelector(".badge");
            badge.textContent = "queued";
            badge.className = "badge badge-queued";
            row.className = "state-queued";
            box.remove();
          }
        }
      }
      if (body.skipped && body.skipped.length) {
        parts.push(body.skipped.length + " object(s) skipped (no longer quarantined). ");
      }
    }
    say(failed ? "failed" : "ok", parts);
    refresh();
  }

  // The page runs in the Airflow UI's sandboxed iframe (no top navigation allowed): a link into
  // the UI navigates the UI's own router (same origin) instead of nesting the UI in the frame.
  function openInAirflow(event) {
    if (window.top === window || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    const href = event.currentTarget.getAttribute("href");
    try {
      const top = window.top;
      const url = new URL(href, top.location.href);
      if (url.origin !== top.location.origin) return;
      const idx = ((top.history.state && top.history.state.idx) || 0) + 1;
      top.history.pushState({ usr: null, key: Math.random().toString(36).slice(2, 10), idx: idx }, "", url.href);
      top.dispatchEvent(new PopStateEvent("popstate", { state: top.history.state }));
      event.preventDefault();
    } catch (err) {
      // Not reachable (another origin): the browser follows the link inside the frame.
    }
  }

  // static/progress.js opens its run links the same way.
  window.imrOpenInAirflow = openInAirflow;

  // Empty filters stay out of the URL (and the fields come back when the page is shown again).
  const filters = document.getElementById("filters");
  const fields = () => filters.querySelectorAll("input[name], select[name]");
  filters.addEventListener("submit", () => {
    for (const field of fields()) if (field.value === "") field.disabled = true;
  });
  window.addEventListener("pageshow", () => {
    for (const field of fields()) field.disabled = false;
  });
  for (const a of document.querySelectorAll("a.airflow-link")) a.addEventListener("click", openInAirflow);
  for (const box of picks()) box.addEventListener("change", refresh);
  pickAll.addEventListener("change", () => {
    for (const box of picks()) box.checked = pickAll.checked;
    refresh();
  });
  button.addEventListener("click", reprocess);
  refresh();
})();
