// Collects uncaught errors and rejected promises so that the browser tests
// (and a curious person in the console) can read them from window.__errors.
(function () {
  var errors = (window.__errors = []);
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      errors.push("failed to load " + (t.src || t.href));
    } else {
      errors.push(String(e.message || e.error || "error") + (e.filename ? " at " + e.filename + ":" + e.lineno : ""));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    var r = e.reason;
    errors.push("unhandled rejection: " + (r && r.stack ? r.stack : String(r)));
  });
  var original = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return original.apply(console, arguments);
  };
})();
