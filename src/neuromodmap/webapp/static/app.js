// neuromodmap web app: small helpers, no framework. htmx (vendored, htmx.min.js) does the rest.
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  // fetch() with the CSRF header, for page scripts that send JSON
  window.nmFetch = function (url, options) {
    options = options || {};
    options.headers = Object.assign({"X-CSRF-Token": csrf()}, options.headers || {});
    options.credentials = "same-origin";
    return fetch(url, options);
  };
})();
