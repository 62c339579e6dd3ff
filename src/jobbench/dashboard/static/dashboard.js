// jobbench dashboard: live updates, the pause control, bars, relative times, select-all.
// No build step, no inline script (the CSP allows only this file). Everything here is an
// enhancement: without it every page still works, just without updating itself.
(function () {
  "use strict";
  var PAUSED_KEY = "jobbench.dashboard.paused";

  // Bars get their width here, not from a style attribute (the CSP refuses inline style).
  function bars(root) {
    root.querySelectorAll(".bar[data-pct]").forEach(function (bar) {
      var pct = parseFloat(bar.getAttribute("data-pct"));
      var fill = bar.querySelector(".fill");
      if (fill && !isNaN(pct)) fill.style.width = Math.max(0, Math.min(100, pct)) + "%";
    });
  }

  function relative(seconds) {
    var span = Math.abs(seconds), units = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
    if (span < 5) return "just now";
    for (var i = 0; i < units.length; i++) {
      if (span >= units[i][0]) {
        var text = Math.floor(span / units[i][0]) + " " + units[i][1];
        return seconds > 0 ? "in " + text : text + " ago";
      }
    }
    return "just now";
  }

  // The server wrote the relative time into each title when it rendered the page; hovering
  // brings it up to date.
  function freshTitle(event) {
    var el = event.target.closest && event.target.closest("time[data-ts]");
    if (!el) return;
    var ts = parseFloat(el.getAttribute("data-ts"));
    if (!isNaN(ts)) el.title = relative(ts - Date.now() / 1000);
  }

  function selectAll(root) {
    var all = root.querySelector("#select-all");
    if (!all) return;
    all.hidden = false;
    all.addEventListener("change", function () {
      root.querySelectorAll('input[type=checkbox][name=job]').forEach(function (box) {
        box.checked = all.checked;
      });
    });
  }

  function prepare(root) {
    bars(root);
    selectAll(root);
  }

  // A user in the middle of something (a selection, typing, an open <details>) keeps the
  // page as it is until done.
  function busy(live) {
    if (live.querySelector("input[type=checkbox]:checked, details[open]")) return true;
    var active = document.activeElement;
    return !!(active && live.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName));
  }

  function refresh(live) {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) return null;  // logged out, job deleted: keep what is shown
        return r.text();
      })
      .then(function (html) {
        if (!html || busy(live)) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        // compared with what was fetched last: the live DOM differs (bars' widths are set here)
        if (!fresh || fresh.innerHTML === live.lastHTML) return;
        live.innerHTML = live.lastHTML = fresh.innerHTML;
        prepare(live);
        live.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next tick tries again */ });
  }

  function liveUpdates(live) {
    var toggle = document.getElementById("live-toggle");
    var period = parseInt(live.getAttribute("data-period"), 10) || 2000;
    var paused = window.localStorage.getItem(PAUSED_KEY) === "1";
    function show() {
      toggle.textContent = paused ? "Resume updates" : "Pause updates";
      toggle.setAttribute("aria-pressed", paused ? "true" : "false");
      document.body.classList.toggle("paused", paused);
    }
    if (toggle) {
      toggle.hidden = false;
      show();
      toggle.addEventListener("click", function () {
        paused = !paused;
        window.localStorage.setItem(PAUSED_KEY, paused ? "1" : "0");
        show();
      });
    }
    setInterval(function () {
      if (!paused && !document.hidden && !busy(live)) refresh(live);
    }, period);
  }

  document.addEventListener("DOMContentLoaded", function () {
    prepare(document);
    document.addEventListener("mouseover", freshTitle);
    var live = document.getElementById("live");
    if (live) liveUpdates(live);
  });
})();
