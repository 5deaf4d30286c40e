// response_mode=form_post (OAuth 2.0 Form Post Response Mode): submit the response at once.
// Served as a file so the page's CSP needs no inline script; <noscript> has a button.
document.addEventListener("DOMContentLoaded", function () {
  var f = document.getElementById("form_post");
  if (f) { f.submit(); }
});
