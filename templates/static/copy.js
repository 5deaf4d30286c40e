// Copy buttons: <button data-copy="ID" data-copied="…" hidden> copies the value of the element
// ID (a readonly input) and says so. Without this script the button stays hidden and the input
// is selected on focus by hand; with it, the input is also selected on focus.
(function () {
  var buttons = document.querySelectorAll("button[data-copy]");
  Array.prototype.forEach.call(buttons, function (b) {
    var field = document.getElementById(b.getAttribute("data-copy"));
    if (!field) return;
    field.addEventListener("focus", function () { field.select(); });
    b.hidden = false;
    b.addEventListener("click", function () {
      var done = function () { b.textContent = b.getAttribute("data-copied") || b.textContent; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {});
      } else {
        field.select();
        try { if (document.execCommand("copy")) done(); } catch (e) { /* selected: copy by hand */ }
      }
    });
  });
})();
