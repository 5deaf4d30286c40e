// Password strength meter: a hint only (the server decides). Works without this script: the
// meter then shows the strength of the last submitted password.
(function () {
  var input = document.getElementById('password');
  var meter = document.getElementById('password-strength');
  if (!input || !meter) return;
  input.addEventListener('input', function () {
    var p = input.value, n = p.length, classes = 0;
    [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].forEach(function (r) { if (r.test(p)) classes++; });
    var score = n < 8 ? 0 : n <= 10 ? 1 : n <= 14 ? 2 : n <= 19 ? 3 : 4;
    if (classes >= 3 && n >= 10) score++;
    if (new Set(p).size * 2 < n) score--;
    meter.value = Math.max(0, Math.min(4, score));
  });
})();
