// crosswatch console, analytics page: sortable posts table, the charts (Chart.js, vendored beside this
// file) and the copy button of the schedule snippet. The tables work without this file.
"use strict";
(function () {
  function sortBy(table, index, kind) {
    var body = table.tBodies[0];
    var header = table.tHead.rows[0].cells[index];
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index], y = b.cells[index];
      var left = kind === "number" ? parseFloat(x.getAttribute("data-value")) : x.textContent.trim().toLowerCase();
      var right = kind === "number" ? parseFloat(y.getAttribute("data-value")) : y.textContent.trim().toLowerCase();
      return (left < right ? -1 : left > right ? 1 : 0) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll("table[data-sortable]").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell, index) {
      var kind = cell.getAttribute("data-sort");
      if (!kind) { return; }
      cell.tabIndex = 0;
      cell.addEventListener("click", function () { sortBy(table, index, kind); });
      cell.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(table, index, kind); } });
    });
  });
  document.querySelectorAll("[data-copy=snippet]").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.parentNode.querySelector("[data-field=snippet]").textContent;
      if (navigator.clipboard) { navigator.clipboard.writeText(text); }
      button.textContent = "Copied";
    });
  });
  var holder = document.getElementById("analytics-data");
  if (!holder || typeof window.Chart === "undefined") { return; }
  var data = JSON.parse(holder.textContent);
  var palette = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#4a5568"];
  function bar(id, part, label) {
    var canvas = document.getElementById(id);
    if (!canvas || !part || !part.labels.length) { return; }
    new window.Chart(canvas, {type: "bar", data: {labels: part.labels, datasets: [
      {label: label, data: part.values, backgroundColor: palette[0]}]},
      options: {indexAxis: "y", animation: false, plugins: {legend: {display: false}}}});
  }
  var over = document.getElementById("chart-over-time");
  if (over && data.days && data.days.length) {
    var sets = Object.keys(data.series).map(function (target, i) {
      return {label: target, data: data.series[target], borderColor: palette[i % palette.length],
              backgroundColor: palette[i % palette.length], spanGaps: true, tension: 0.2};
    });
    new window.Chart(over, {type: "line", data: {labels: data.days, datasets: sets},
      options: {animation: false, scales: {y: {beginAtZero: true, title: {display: true, text: "interactions per post"}}}}});
  }
  bar("chart-keywords", data.keywords, "mean interactions");
  bar("chart-lenses", data.lenses, "mean interactions");
})();
