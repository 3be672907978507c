// Dockmaster UI: live runs and logs over the events WebSocket, CSRF header on fetches, confirmations.
(function () {
  "use strict";
  const csrf = document.body.dataset.csrf || "";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function badge(status) {
    return el("span", { class: "badge status-" + status }, status);
  }

  function upsertRun(ev) {
    document.querySelectorAll("[data-live-runs] tbody").forEach(function (tbody) {
      let row = tbody.querySelector('tr[data-run-id="' + ev.run_id + '"]');
      if (!row) {
        const empty = tbody.querySelector("tr.empty");
        if (empty) empty.remove();
        row = el("tr", { "data-run-id": String(ev.run_id), class: "new" });
        const link = el("a", { href: "/runs/" + ev.run_id }, String(ev.run_id));
        const idCell = el("td"); idCell.appendChild(link);
        row.appendChild(idCell);
        row.appendChild(el("td", {}, ev.kind));
        row.appendChild(el("td", {}, ev.target));
        row.appendChild(el("td", { class: "run-status" }));
        row.appendChild(el("td", { class: "reason" }, ev.reason || ""));
        row.appendChild(el("td", {}, new Date(ev.time * 1000).toLocaleString()));
        row.appendChild(el("td", {}, ""));
        tbody.insertBefore(row, tbody.firstChild);
      }
      const cell = row.querySelector(".run-status");
      cell.replaceChildren(badge(ev.status || "running"));
      const reason = row.querySelector(".reason");
      if (ev.reason) reason.textContent = ev.reason;
      if (ev.error) {
        reason.appendChild(el("br"));
        reason.appendChild(el("small", { class: "bad" }, ev.error));
      }
    });
    const active = document.getElementById("active-runs");
    if (active) {
      const n = parseInt(active.textContent, 10) || 0;
      active.textContent = String(Math.max(0, n + (ev.type === "run_started" ? 1 : -1)));
    }
  }

  function onRunPage(ev) {
    const log = document.getElementById("run-log");
    if (!log || String(ev.run_id) !== log.dataset.runId) return;
    if (ev.type === "run_log") {
      log.textContent += (log.textContent ? "\n" : "") + ev.lines.join("\n");
      log.scrollTop = log.scrollHeight;
    } else if (ev.type === "run_finished") {
      const status = document.getElementById("run-status");
      status.dataset.status = ev.status;
      status.replaceChildren(badge(ev.status));
    }
  }

  function connect(delay) {
    if (!document.querySelector("[data-live-runs], #run-log, [data-live]")) return;
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/api/v1/events");
    const indicator = document.getElementById("live-indicator");
    ws.onopen = function () {
      if (indicator) indicator.classList.add("on");
      window.dockmaster.live = true;
      delay = 1000;
    };
    ws.onmessage = function (msg) {
      const ev = JSON.parse(msg.data);
      if (ev.type === "run_started") upsertRun(Object.assign({ status: "running" }, ev));
      else if (ev.type === "run_finished") upsertRun(ev);
      onRunPage(ev);
      document.dispatchEvent(new CustomEvent("dockmaster:event", { detail: ev }));
    };
    ws.onclose = function () {
      if (indicator) indicator.classList.remove("on");
      window.dockmaster.live = false;
      setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    };
  }

  // Buttons and forms marked data-confirm ask first; fetch-driven actions send the CSRF header.
  document.addEventListener("submit", function (e) {
    const form = e.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
    if (e.defaultPrevented) return;
    // The action runs until the next page arrives: its button shows that and cannot be pressed twice.
    const button = e.submitter || form.querySelector("button[type=submit], button:not([type])");
    form.setAttribute("aria-busy", "true");
    setTimeout(function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      if (button) {
        button.classList.add("busy");
        if (button.dataset.busyText) button.textContent = button.dataset.busyText;
      }
    }, 0);
  });
  // A page restored from the back/forward cache must not keep its buttons disabled.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    document.querySelectorAll("form[aria-busy]").forEach(function (form) {
      form.removeAttribute("aria-busy");
      form.querySelectorAll("button").forEach(function (b) { b.disabled = false; b.classList.remove("busy"); });
    });
  });
  // The compact phone menu.
  const menu = document.getElementById("menu-toggle");
  if (menu) {
    menu.addEventListener("click", function () {
      const nav = document.getElementById(menu.getAttribute("aria-controls"));
      const open = menu.getAttribute("aria-expanded") !== "true";
      menu.setAttribute("aria-expanded", String(open));
      if (nav) nav.classList.toggle("open", open);
    });
  }
  // Buttons marked data-copy="#id" copy that element's text (deploy keys and the like).
  document.addEventListener("click", function (e) {
    const button = e.target.closest ? e.target.closest("button[data-copy]") : null;
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.dataset.copied = "true";
      button.textContent = "Copied";
    });
  });
  window.dockmaster = {
    csrf: csrf,
    post: function (url, body) {
      return fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
      });
    },
  };
  connect(1000);
})();
