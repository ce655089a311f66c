// The console's little script: the escalation queue updates itself (polling its rows, 304 when
// nothing changed, paused while the tab is hidden) and SLA clocks count down between updates.
// No library, no inline code (the page's Content-Security-Policy allows scripts from here only).
(function () {
  "use strict";

  function words(minutes) {
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60), rest = minutes % 60;
    if (hours < 24) return rest ? hours + " h " + rest + " min" : hours + " h";
    var days = Math.floor(hours / 24);
    hours = hours % 24;
    return hours ? days + " d " + hours + " h" : days + " d";
  }

  function tick(seconds) {
    var clocks = document.querySelectorAll("[data-seconds-left]");
    for (var i = 0; i < clocks.length; i++) {
      var el = clocks[i];
      var left = parseInt(el.getAttribute("data-seconds-left"), 10) - seconds;
      el.setAttribute("data-seconds-left", String(left));
      if (left < 0) {
        el.textContent = "Overdue by " + words(Math.floor(-left / 60));
        el.className = "sla sla-overdue";
      } else {
        el.textContent = "Due in " + words(Math.floor(left / 60));
      }
    }
  }

  function live(queue) {
    var url = queue.getAttribute("data-rows-url");
    var every = Math.max(1, parseInt(queue.getAttribute("data-refresh"), 10) || 5) * 1000;
    var rows = document.getElementById("queue-rows");
    var status = document.getElementById("queue-status");
    var etag = null;
    var flags = parseInt(queue.getAttribute("data-red-flags"), 10) || 0;

    function update() {
      if (document.hidden) return;
      var headers = etag ? { "If-None-Match": etag } : {};
      fetch(url, { headers: headers, credentials: "same-origin", redirect: "manual" })
        .then(function (response) {
          if (response.status === 200) {
            etag = response.headers.get("ETag");
            var count = parseInt(response.headers.get("X-Red-Flags") || "0", 10);
            return response.text().then(function (html) {
              rows.innerHTML = html;
              if (count !== flags) {
                status.textContent = count
                  ? count + " red flag" + (count === 1 ? "" : "s") + " waiting for someone to take it"
                  : "No red flag waiting";
                status.className = "status" + (count ? " loud" : "");
              }
              flags = count;
            });
          }
          if (response.type === "opaqueredirect" || response.status === 401) {
            window.location.reload(); // signed out: the page asks to sign in again
          }
        })
        .catch(function () { /* the next poll tries again */ });
    }
    window.setInterval(update, every);
    document.addEventListener("visibilitychange", update);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var queue = document.getElementById("queue");
    if (queue) live(queue);
    window.setInterval(function () { tick(15); }, 15000);
  });
})();
