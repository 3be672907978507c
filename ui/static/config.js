// Dashboard: "Check and reload config" calls POST /api/v1/config/reload and shows what happened.
(function () {
  "use strict";
  const button = document.getElementById("reload-config");
  const out = document.getElementById("reload-result");
  if (!button || !out) return;

  function line(text, cls) {
    const p = document.createElement("p");
    if (cls) p.className = cls;
    p.textContent = text;
    return p;
  }

  function show(ok, title, items) {
    const box = document.createElement("div");
    box.className = "banner " + (ok ? "ok" : "error");
    box.appendChild(line(title));
    if (items.length) {
      const list = document.createElement("ul");
      items.forEach(function (text) { const li = document.createElement("li"); li.textContent = text; list.appendChild(li); });
      box.appendChild(list);
    }
    out.replaceChildren(box);
  }

  button.addEventListener("click", async function () {
    const label = button.textContent;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = button.dataset.busyText || "Working…";
    try {
      const resp = await fetch("/api/v1/config/reload", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": document.body.dataset.csrf || "" },
        body: "{}",
      });
      const data = await resp.json();
      if (resp.ok) {
        const items = [];
        if (data.reloaded.length) items.push("reloaded: " + data.reloaded.join(", "));
        if (data.added.length) items.push("added: " + data.added.join(", "));
        if (data.removed.length) items.push("removed: " + data.removed.join(", "));
        if (data.auth) items.push("users and tokens updated");
        Object.entries(data.failed).forEach(function (e) { items.push(e[0] + " failed: " + e[1]); });
        if (data.restart_required.length) items.push("needs a restart: " + data.restart_required.join(", "));
        show(true, items.length ? "Config reloaded." : "Config is valid; nothing changed.", items);
      } else {
        const issues = (data.error.details && data.error.details.issues) || [];
        show(false, data.error.message, issues.map(function (i) {
          return (i.path ? i.path + ": " : "") + i.message + (i.file ? " (" + i.file + ", line " + i.line + ")" : "");
        }));
      }
    } catch (err) {
      show(false, "Reload failed: " + err, []);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = label;
    }
  });
})();
