// The console's only script: refresh the live part of the page, confirm dangerous actions.
// No framework, no build step. The server renders every fragment; this swaps it in.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh-ms"), 10);
  if (isNaN(every)) { every = 2000; }
  var live = document.getElementById("live");
  var conn = document.getElementById("conn");
  var busy = false;

  function mark(ok) {
    if (!conn) { return; }
    conn.textContent = ok ? "live" : "disconnected";
    conn.className = ok ? "conn" : "conn down";
  }

  function refresh() {
    if (busy || document.hidden || !live) { return; }
    var active = document.activeElement;
    if (active && live.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
      return;  // do not pull a field from under someone typing in it
    }
    busy = true;
    fetch(window.location.pathname + window.location.search, {
      headers: { "X-Console-Fragment": "1" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (resp) {
      if (!resp.ok) { throw new Error("HTTP " + resp.status); }
      return resp.text();
    }).then(function (html) {
      live.innerHTML = html;
      mark(true);
    }).catch(function () {
      mark(false);
    }).then(function () {
      busy = false;
    });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  });

  if (every > 0) {  // 0: a page that must stay as sent (an action's refusal)
    window.setInterval(refresh, every);
  }
})();
