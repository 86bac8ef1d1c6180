// Evidence page: the upload form is sent with the CSRF header (window.nmFetch from app.js) and the
// server-rendered answer (result or the list of bad cells, escaped) replaces the page. Without
// JavaScript the form posts itself with its csrf_token field.
(function () {
  "use strict";
  var form = document.getElementById("nm-upload");
  if (!form || !window.nmFetch || !window.FormData) { return; }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    window.nmFetch(form.getAttribute("action"), {method: "POST", body: new FormData(form)})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        document.open();
        document.write(html);
        document.close();
      })
      .catch(function (err) {
        if (button) { button.disabled = false; }
        window.alert(err.message);
      });
  });
})();
