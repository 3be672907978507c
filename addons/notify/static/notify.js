// Notifications page: "Send test" buttons post to the API with the session's CSRF token.
(function () {
  "use strict";
  function resultFor(name) {
    return document.querySelector('output[data-notify-result="' + CSS.escape(name) + '"]');
  }
  async function sendTest(button) {
    const name = button.dataset.notifyTest;
    const out = resultFor(name);
    button.disabled = true;
    if (out) out.textContent = "sending…";
    try {
      const resp = await window.dockmaster.post("/api/v1/notify/test", name ? { target: name } : {});
      const data = await resp.json();
      if (!resp.ok) {
        if (out) out.textContent = (data.error && data.error.message) || ("failed (" + resp.status + ")");
        return;
      }
      const parts = data.results.map(function (r) {
        return r.target + ": " + r.outcome + (r.error ? " (" + r.error + ")" : "");
      });
      if (out) out.textContent = parts.join("; ");
    } catch (err) {
      if (out) out.textContent = "request failed: " + err;
    } finally {
      button.disabled = false;
    }
  }
  document.querySelectorAll("button[data-notify-test]").forEach(function (button) {
    button.addEventListener("click", function () { sendTest(button); });
  });
})();
