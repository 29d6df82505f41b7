/* unitscope report: sorting and filtering of the unit table (no dependencies, works from file://). */
(function () {
  "use strict";

  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) { return numeric ? -Infinity : ""; }
    var raw = cell.getAttribute("data-value");
    if (numeric) {
      var number = parseFloat(raw !== null ? raw : cell.textContent);
      return isNaN(number) ? -Infinity : number;
    }
    var order = cell.getAttribute("data-order");
    return order !== null ? order.padStart(8, "0") : cell.textContent.trim().toLowerCase();
  }

  function makeSortable(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      th.tabIndex = 0;
      th.setAttribute("aria-sort", "none");
      function sort() {
        var numeric = th.getAttribute("data-type") === "num";
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.forEach(function (row, i) { row._position = i; });
        rows.sort(function (a, b) {
          var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
          if (x < y) { return ascending ? -1 : 1; }
          if (x > y) { return ascending ? 1 : -1; }
          return a._position - b._position;
        });
        var fragment = document.createDocumentFragment();
        rows.forEach(function (row) { fragment.appendChild(row); });
        body.appendChild(fragment);
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
      });
    });
  }

  function setupUnitFilter() {
    var table = document.getElementById("unit-table");
    if (!table) { return; }
    var text = document.getElementById("unit-filter");
    var network = document.getElementById("unit-network");
    var detectors = document.getElementById("unit-detectors");
    var count = document.getElementById("unit-count");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    rows.forEach(function (row) { row._text = row.textContent.toLowerCase(); });

    function apply() {
      var words = (text.value || "").toLowerCase().split(/\s+/).filter(Boolean);
      var net = network ? network.value : "";
      var onlyDetectors = detectors ? detectors.checked : false;
      var shown = 0;
      rows.forEach(function (row) {
        var visible = words.every(function (w) { return row._text.indexOf(w) !== -1; })
          && (!net || row.getAttribute("data-network") === net)
          && (!onlyDetectors || row.getAttribute("data-detector") === "1");
        row.hidden = !visible;
        if (visible) { shown += 1; }
      });
      count.textContent = shown === rows.length ? rows.length + " units" : shown + " of " + rows.length + " units";
    }
    text.addEventListener("input", apply);
    if (network) { network.addEventListener("change", apply); }
    if (detectors) { detectors.addEventListener("change", apply); }
    apply();
  }

  document.querySelectorAll("table.sortable").forEach(makeSortable);
  setupUnitFilter();
}());
