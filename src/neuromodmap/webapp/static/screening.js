// Screening page: keyboard shortcuts (i include, e exclude, m maybe, u undo) and conflict resolution.
// Votes are POSTed as JSON with the CSRF header (window.nmFetch from app.js); the next record and
// the status panel come back as server-rendered (escaped) HTML fragments.
(function () {
  "use strict";
  var root = document.getElementById("nm-screen");
  var busy = false;

  function send(url, body) {
    return window.nmFetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify(body)})
      .then(function (r) {
        if (!r.ok) { return r.json().then(function (j) { throw new Error(j.detail || r.statusText); }); }
        return r.json();
      });
  }

  var statusSeq = 0;
  // the next record is swapped in as soon as it arrives; the status panel (stopping rule, kappa,
  // PRISMA: slower) follows on its own, an older answer never replacing a newer one
  function refresh(reviewer) {
    var q = "?reviewer=" + encodeURIComponent(reviewer);
    var seq = ++statusSeq;
    fetch("/screening/fragment/status" + q, {credentials: "same-origin"})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        if (seq === statusSeq) {
          document.getElementById("nm-screen-status").innerHTML = html;
          document.body.setAttribute("data-status", String(seq));
        }
      });
    return fetch("/screening/fragment/record" + q, {credentials: "same-origin"})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        document.getElementById("nm-screen-record").innerHTML = html;
        document.body.setAttribute("data-screened", String(Date.now()));
      });
  }

  function act(kind) {
    if (busy || !root) { return; }
    var reviewer = root.getAttribute("data-reviewer");
    var card = document.getElementById("nm-record");
    if (!reviewer || !card) { return; }
    var call;
    if (kind === "undo") {
      call = send("/api/screening/undo", {reviewer: reviewer});
    } else if (kind === "stop") {
      call = send("/api/screening/stop", {reviewer: reviewer});
    } else {
      var id = card.getAttribute("data-record-id");
      if (!id) { return; }
      var reason = document.getElementById("nm-reason");
      call = send("/api/screening/decisions", {record_id: id, reviewer: reviewer, decision: kind,
                                               reason: reason ? reason.value : ""});
    }
    busy = true;
    document.body.setAttribute("data-busy", "1");
    call.then(function () { return refresh(reviewer); })
      .catch(function (err) { window.alert(err.message); })
      .then(function () { busy = false; document.body.removeAttribute("data-busy"); });
  }

  if (root && root.getAttribute("data-reviewer")) {
    document.addEventListener("keydown", function (ev) {
      var tag = (ev.target && ev.target.tagName) || "";
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      var map = {i: "include", e: "exclude", m: "maybe", u: "undo"};
      var kind = map[ev.key];
      if (kind) { ev.preventDefault(); act(kind); }
    });
    document.addEventListener("click", function (ev) {
      var b = ev.target.closest && ev.target.closest("button[data-decision], button[data-action]");
      if (b && root.contains(b)) { act(b.getAttribute("data-decision") || b.getAttribute("data-action")); }
    });
  }

  var conflicts = document.getElementById("nm-conflicts");
  if (conflicts) {
    conflicts.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var form = ev.target;
      var decision = (ev.submitter && ev.submitter.value) || "include";
      send("/api/screening/conflicts/" + encodeURIComponent(form.getAttribute("data-record-id")) + "/resolve",
           {decision: decision, reviewer: form.elements.reviewer.value, note: form.elements.note.value})
        .then(function () { window.location.reload(); })
        .catch(function (err) { window.alert(err.message); });
    });
  }
})();
