// jobbench dashboard: local times and live progress (polls the JSON endpoints). No build step.
(function () {
  "use strict";
  var base = document.body.getAttribute("data-base") || "";
  var PERIOD = 1000;

  function localTimes() {
    document.querySelectorAll("time[data-ts]").forEach(function (el) {
      var ts = parseFloat(el.getAttribute("data-ts"));
      if (!isNaN(ts)) el.textContent = new Date(ts * 1000).toLocaleString();
    });
  }

  // Bars get their width here, not from a style attribute (the CSP refuses inline style).
  function initialBars() {
    document.querySelectorAll(".bar[data-pct]").forEach(function (bar) {
      var pct = parseFloat(bar.getAttribute("data-pct"));
      var fill = bar.querySelector(".fill");
      if (fill && !isNaN(pct)) fill.style.width = Math.max(0, Math.min(100, pct)) + "%";
    });
  }

  function setBar(container, progress) {
    var pct = Math.round((progress || 0) * 10) / 10;
    var fill = container.querySelector(".fill");
    var label = container.querySelector(".pct");
    if (fill) fill.style.width = pct + "%";
    if (label) label.textContent = pct + "%";
  }

  function getJSON(url, done) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) done(data); })
      .catch(function () { /* keep polling */ });
  }

  function pollTasks(table) {
    getJSON(base + "/api/tasks", function (tasks) {
      tasks.forEach(function (t) {
        var sel = 'tr[data-task="' + CSS.escape(t.task_id) + '"][data-site="' +
          CSS.escape(t.site) + '"]';
        var row = table.querySelector(sel);
        if (!row) return;
        setBar(row.querySelector(".progress"), t.progress);
        row.querySelector(".stage").textContent = t.stage || "";
        var status = row.querySelector(".task-status");
        status.textContent = t.status;
        status.className = "state " + String(t.status).toLowerCase() + " task-status";
      });
    });
  }

  function pollJob(table) {
    var q = "?site=" + encodeURIComponent(table.getAttribute("data-site")) +
      "&id=" + encodeURIComponent(table.getAttribute("data-job"));
    getJSON(base + "/api/job" + q, function (job) {
      var box = table.querySelector("[data-poll-job]");
      setBar(box, job.progress);
      box.querySelector(".stage").textContent = job.stage || "";
      var status = document.getElementById("job-status");
      status.textContent = job.status;
      status.className = "state " + job.status;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes();
    initialBars();
    var tasks = document.querySelector("[data-poll-tasks]");
    if (tasks) setInterval(function () { pollTasks(tasks); }, PERIOD);
    var job = document.getElementById("job");
    if (job) setInterval(function () { pollJob(job); }, PERIOD);
  });
})();
