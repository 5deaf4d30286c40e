// Proof of work before an SMS is sent: find a nonce such that SHA-256(challenge + ":" + nonce)
// starts with `difficulty` zero bits, then submit. Self-hosted, no third party.
(function () {
  var form = document.getElementById('phone-form');
  var ch = document.getElementById('pow_challenge');
  var nonce = document.getElementById('pow_nonce');
  if (!form || !ch || !nonce || !window.crypto || !crypto.subtle) return;
  var difficulty = parseInt(ch.getAttribute('data-difficulty') || '16', 10);
  function zeroBits(buf) {
    var b = new Uint8Array(buf), n = 0;
    for (var i = 0; i < b.length; i++) {
      if (b[i] === 0) { n += 8; continue; }
      n += Math.clz32(b[i]) - 24; break;
    }
    return n;
  }
  var solving = false;
  form.addEventListener('submit', async function (e) {
    if (nonce.value) return;
    e.preventDefault();
    if (solving) return;
    solving = true;
    var enc = new TextEncoder();
    for (var n = 0; ; n++) {
      var d = await crypto.subtle.digest('SHA-256', enc.encode(ch.value + ':' + n));
      if (zeroBits(d) >= difficulty) { nonce.value = String(n); break; }
    }
    form.submit();
  });
})();
