// Containers page: restart with confirmation, live log viewer (follow + client-side filter), probes.
(function () {
  "use strict";
  const MAX_LINES = 5000;
  const message = document.getElementById("ops-message");
  const viewer = document.getElementById("ops-log-viewer");
  const log = document.getElementById("ops-log");
  const search = document.getElementById("ops-log-search");
  const follow = document.getElementById("ops-log-follow");
  let socket = null;

  function say(text, bad) {
    if (!message) return;
    message.textContent = text;
    message.className = bad ? "bad" : "muted";
  }

  async function runOp(name, body) {
    const resp = await window.dockmaster.post("/api/v1/ops/" + name, body);
    const data = await resp.json();
    if (!resp.ok) throw new Error((data.error && data.error.message) || resp.statusText);
    return data;
  }

  document.querySelectorAll("[data-ops-restart]").forEach(function (button) {
    button.addEventListener("click", async function () {
      const name = button.dataset.opsRestart;
      if (!window.confirm("Restart container " + name + "?")) return;
      button.disabled = true;
      say("Restarting " + name + "…");
      try {
        const data = await runOp("container_restart", { target: name, args: {} });
        say("Restarted " + name + " (run " + data.run_id + ").");
        setTimeout(function () { location.reload(); }, 800);
      } catch (err) {
        say("Restart of " + name + " failed: " + err.message, true);
      } finally {
        button.disabled = false;
      }
    });
  });

  // Lines are untrusted text: they only ever reach the page through textContent.
  function matches(line) {
    const needle = search.value.trim().toLowerCase();
    return !needle || line.toLowerCase().includes(needle);
  }

  function addLines(lines, dropped) {
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      const row = document.createElement("div");
      row.textContent = line;
      if (dropped && line.startsWith("[... ") && line.endsWith(" lines dropped ...]")) row.className = "muted";
      if (!matches(line)) row.hidden = true;
      fragment.appendChild(row);
    }
    log.appendChild(fragment);
    while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
    if (follow.checked) log.scrollTop = log.scrollHeight;
  }

  function closeViewer() {
    if (socket) { socket.close(); socket = null; }
    document.getElementById("ops-log-live").classList.remove("on");
  }

  function openViewer(name) {
    closeViewer();
    viewer.hidden = false;
    log.replaceChildren();
    document.getElementById("ops-log-name").textContent = name;
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const table = document.getElementById("ops-containers");
    const engine = (table && table.dataset.engine) || "local";
    socket = new WebSocket(proto + location.host + "/api/v1/ops/logs/" + encodeURIComponent(name) +
                           "/follow?tail=200&engine=" + encodeURIComponent(engine));
    socket.onopen = function () { document.getElementById("ops-log-live").classList.add("on"); };
    socket.onmessage = function (msg) {
      const data = JSON.parse(msg.data);
      if (data.type === "lines") addLines(data.lines, data.dropped);
      else if (data.type === "end") addLines(["[log stream ended]"]);
    };
    socket.onclose = function () { document.getElementById("ops-log-live").classList.remove("on"); };
    viewer.scrollIntoView();
  }

  document.querySelectorAll("[data-ops-logs]").forEach(function (button) {
    button.addEventListener("click", function () { openViewer(button.dataset.opsLogs); });
  });
  if (search) {
    search.addEventListener("input", function () {
      for (const row of log.children) row.hidden = !matches(row.textContent);
    });
  }
  const close = document.getElementById("ops-log-close");
  if (close) close.addEventListener("click", function () { closeViewer(); viewer.hidden = true; });

  const probes = document.getElementById("ops-run-probes");
  if (probes) {
    probes.addEventListener("click", async function () {
      probes.disabled = true;
      try {
        await runOp("probes_run", { args: {} });
        location.reload();
      } catch (err) {
        say("Probes failed: " + err.message, true);
        probes.disabled = false;
      }
    });
  }
})();
