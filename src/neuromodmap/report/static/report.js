/* neuromodmap report tables: sort plain tables; search, filter, sort and page the big ones.
   No dependencies, no network. Data come from the JSON blocks named by data-source. */
(function () {
  "use strict";

  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    var xn = a !== "" && isFinite(a) && !isNaN(x), yn = b !== "" && isFinite(b) && !isNaN(y);
    if (xn && yn) return x - y;
    if (xn !== yn) return xn ? -1 : 1;  // numbers before text
    return String(a).localeCompare(String(b), undefined, {numeric: true, sensitivity: "base"});
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\/[^\s<>"']+$/i.test(url) ? url : "";
  }

  function markSorted(ths, th, dir) {
    ths.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
  }

  /* plain HTML tables: click a header to sort by it (again to reverse) */
  function sortable(table) {
    var ths = Array.prototype.slice.call(table.querySelectorAll("thead th"));
    ths.forEach(function (th, col) {
      th.tabIndex = 0;
      var dir = 1;
      function go() {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var a = r1.cells[col] ? r1.cells[col].getAttribute("data-sort") || r1.cells[col].textContent.trim() : "";
          var b = r2.cells[col] ? r2.cells[col].getAttribute("data-sort") || r2.cells[col].textContent.trim() : "";
          return dir * compare(a, b);
        });
        rows.forEach(function (r) { body.appendChild(r); });
        markSorted(ths, th, dir);
        dir = -dir;
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
    });
  }

  /* searchable tables rendered from JSON: {columns:[{label, link}], rows:[[...]], facets:[i], pageSize} */
  function datatable(host) {
    var source = document.getElementById(host.getAttribute("data-source"));
    if (!source) return;
    var spec = JSON.parse(source.textContent);
    var shown = [];
    spec.columns.forEach(function (c, i) { if (!c.hidden) shown.push(i); });
    var state = {query: "", facets: {}, sortCol: -1, dir: 1, page: 0};
    var haystack = spec.rows.map(function (row) {
      return shown.map(function (i) { return String(row[i]); }).join(" \u0001 ").toLowerCase();
    });

    var bar = el("div", "nm-dt-bar");
    var search = el("input");
    search.type = "search";
    search.placeholder = "Search " + spec.rows.length + " rows (all words must match)";
    search.setAttribute("aria-label", "Search the table");
    search.className = "nm-dt-search";
    bar.appendChild(search);
    var selects = [];
    (spec.facets || []).forEach(function (col) {
      var values = {};
      spec.rows.forEach(function (row) {
        String(row[col]).split(";").forEach(function (v) { v = v.trim(); if (v) values[v] = (values[v] || 0) + 1; });
      });
      var sel = el("select", "nm-dt-facet");
      sel.setAttribute("aria-label", "Filter by " + spec.columns[col].label);
      sel.setAttribute("data-column", spec.columns[col].label);
      sel.appendChild(option("", "any " + spec.columns[col].label));
      Object.keys(values).sort(compare).forEach(function (v) { sel.appendChild(option(v, v + " (" + values[v] + ")")); });
      sel.addEventListener("change", function () { state.facets[col] = sel.value; state.page = 0; render(); });
      bar.appendChild(sel);
      selects.push(sel);
    });
    var count = el("span", "nm-dt-count");
    count.setAttribute("aria-live", "polite");
    bar.appendChild(count);
    host.appendChild(bar);

    var wrap = el("div", "nm-table-wrap");
    var table = el("table", "nm-table nm-dt-table");
    var thead = el("thead"), hr = el("tr");
    var ths = [];
    shown.forEach(function (i) {
      var th = el("th");
      th.textContent = spec.columns[i].label;
      th.tabIndex = 0;
      th.setAttribute("scope", "col");
      function go() {
        state.dir = state.sortCol === i ? -state.dir : 1;
        state.sortCol = i;
        markSorted(ths, th, state.dir);
        render();
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
      ths.push(th);
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    table.appendChild(thead);
    var tbody = el("tbody");
    table.appendChild(tbody);
    wrap.appendChild(table);
    host.appendChild(wrap);

    var pager = el("div", "nm-dt-pager");
    var prev = el("button"), next = el("button"), where = el("span");
    prev.type = next.type = "button";
    prev.textContent = "\u2190 previous";
    next.textContent = "next \u2192";
    prev.addEventListener("click", function () { state.page -= 1; render(); });
    next.addEventListener("click", function () { state.page += 1; render(); });
    pager.appendChild(prev);
    pager.appendChild(where);
    pager.appendChild(next);
    host.appendChild(pager);

    var timer = null;
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { state.query = search.value; state.page = 0; render(); }, 80);
    });

    function matches(k) {
      var words = state.query.toLowerCase().split(/\s+/).filter(Boolean);
      for (var w = 0; w < words.length; w++) if (haystack[k].indexOf(words[w]) < 0) return false;
      for (var col in state.facets) {
        var want = state.facets[col];
        if (!want) continue;
        var have = String(spec.rows[k][col]).split(";").map(function (v) { return v.trim(); });
        if (have.indexOf(want) < 0) return false;
      }
      return true;
    }

    function render() {
      var idx = [];
      for (var k = 0; k < spec.rows.length; k++) if (matches(k)) idx.push(k);
      if (state.sortCol >= 0) {
        var c = state.sortCol;
        idx.sort(function (a, b) { return state.dir * compare(spec.rows[a][c], spec.rows[b][c]) || a - b; });
      }
      var size = spec.pageSize || 25, pages = Math.max(1, Math.ceil(idx.length / size));
      state.page = Math.min(Math.max(0, state.page), pages - 1);
      var start = state.page * size, stop = Math.min(idx.length, start + size);
      tbody.textContent = "";
      for (var r = start; r < stop; r++) {
        var row = spec.rows[idx[r]], tr = el("tr");
        shown.forEach(function (i) {
          var td = el("td"), value = row[i], link = spec.columns[i].link;
          var url = link >= 0 ? safeUrl(row[link]) : "";
          if (url) {
            var a = el("a");
            a.href = url;
            a.rel = "noopener noreferrer";
            a.textContent = value;
            td.appendChild(a);
          } else {
            td.textContent = value;
          }
          tr.appendChild(td);
        });
        tbody.appendChild(tr);
      }
      host.setAttribute("data-matching", String(idx.length));
      count.textContent = idx.length === spec.rows.length
        ? spec.rows.length + " rows"
        : idx.length + " of " + spec.rows.length + " rows match";
      where.textContent = idx.length ? "rows " + (start + 1) + "\u2013" + stop + " of " + idx.length : "no rows";
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
    }
    render();
  }

  function el(tag, cls) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    return e;
  }

  function option(value, text) {
    var o = el("option");
    o.value = value;
    o.textContent = text;
    return o;
  }

  document.querySelectorAll("table.nm-sortable").forEach(sortable);
  document.querySelectorAll("div.nm-datatable").forEach(datatable);
})();
