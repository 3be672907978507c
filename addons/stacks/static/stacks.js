// Stacks list: the table follows deploys live — it is reloaded when a run of a listed stack (or its
// image update) starts or ends, or a stack drifts (events from the WebSocket that app.js opens for
// pages marked data-live).
(function () {
  "use strict";
  const table = document.getElementById("stacks");
  if (!table) return;
  const names = new Set(Array.from(table.querySelectorAll("tr[data-stack]"), function (row) {
    return row.dataset.stack;
  }));
  const kinds = new Set(["run_started", "run_finished", "drift_detected"]);
  let timer = null;

  function refresh() {
    timer = null;
    fetch(location.pathname, { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.text() : null; })
      .then(function (html) {
        if (!html) return;
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("#stacks tbody");
        if (fresh) table.querySelector("tbody").replaceWith(fresh);
      })
      .catch(function () { /* the next event tries again */ });
  }

  document.addEventListener("dockmaster:event", function (e) {
    const ev = e.detail;
    // An image update runs as the ops operation `stack_update:<stack>`.
    const target = String(ev.target || ev.stack || "").replace(/^stack_update:/, "");
    if (!kinds.has(ev.type) || !names.has(target)) return;
    // A burst (a deploy and its rollback) reloads once.
    if (!timer) timer = setTimeout(refresh, 300);
  });
})();
