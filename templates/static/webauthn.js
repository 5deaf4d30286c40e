// WebAuthn ceremonies for the security page (#add-passkey), the second step
// (#use-security-key) and the sign-in page (#passkey-login, and conditional UI on the email
// input). The server gives the options as JSON (binary values base64url), the browser's
// answer goes back in a hidden input of a plain form, so the server answers as for any form.
(function () {
  'use strict';
  if (!window.PublicKeyCredential) return;
  function b64ToBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64(buf) {
    var bytes = new Uint8Array(buf), bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function csrf(form) { return form.querySelector('input[name="csrf_token"]').value; }
  function options(url, form, conditional) {
    return fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Accept': 'application/json' },
      // `conditional=1` names the autofill request (the server treats both alike).
      body: 'csrf_token=' + encodeURIComponent(csrf(form)) + (conditional ? '&conditional=1' : ''),
    }).then(function (r) { if (!r.ok) throw new Error('options: HTTP ' + r.status); return r.json(); });
  }
  function failed(e) {
    var s = document.getElementById('webauthn-status');
    if (s) s.hidden = false;
    if (window.console) console.warn('webauthn', e);
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64ToBuf(pk.challenge);
    pk.user.id = b64ToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64ToBuf(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64ToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64ToBuf(c.id); });
    return { publicKey: pk };
  }
  function registration(c) {
    return JSON.stringify({
      id: c.id, rawId: bufToB64(c.rawId), type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: {
        attestationObject: bufToB64(c.response.attestationObject),
        clientDataJSON: bufToB64(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : undefined,
      },
    });
  }
  function assertion(c) {
    return JSON.stringify({
      id: c.id, rawId: bufToB64(c.rawId), type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: {
        authenticatorData: bufToB64(c.response.authenticatorData),
        clientDataJSON: bufToB64(c.response.clientDataJSON),
        signature: bufToB64(c.response.signature),
        userHandle: c.response.userHandle ? bufToB64(c.response.userHandle) : null,
      },
    });
  }
  function submitWith(form, inputId, value) {
    document.getElementById(inputId).value = value;
    form.submit();
  }

  var add = document.getElementById('add-passkey');
  if (add) {
    add.addEventListener('click', function () {
      var form = document.getElementById('passkey-form');
      options('/account/security/passkey/options', form)
        .then(function (o) { return navigator.credentials.create(creationOptions(o)); })
        .then(function (c) { submitWith(form, 'passkey-credential', registration(c)); })
        .catch(failed);
    });
  }

  var second = document.getElementById('use-security-key');
  if (second) {
    second.addEventListener('click', function () {
      var form = document.getElementById('webauthn-form');
      options('/login/second-factor/webauthn/options', form)
        .then(function (o) { return navigator.credentials.get(requestOptions(o)); })
        .then(function (c) { submitWith(form, 'webauthn-credential', assertion(c)); })
        .catch(failed);
    });
  }

  var login = document.getElementById('passkey-login');
  if (login) {
    var form = document.getElementById('passkey-login-form');
    // The conditional request (autofill) waits in the background; a click aborts it and, once
    // it has settled, asks for a passkey with the browser's dialog.
    var pending = null;
    var settled = Promise.resolve();
    var run = function (conditional) {
      var ctl = new AbortController();
      pending = ctl;
      var p = options('/login/passkey/options', form, conditional).then(function (o) {
        var req = requestOptions(o);
        req.signal = ctl.signal;
        if (conditional) req.mediation = 'conditional';
        return navigator.credentials.get(req);
      }).then(function (c) {
        if (c) submitWith(form, 'passkey-login-credential', assertion(c));
      });
      settled = p.catch(function () {});
      return p;
    };
    login.addEventListener('click', function () {
      if (pending) pending.abort();
      settled.then(function () { return run(false); }).catch(failed);
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) run(true).catch(function (e) { if (e && e.name !== 'AbortError') failed(e); });
      });
    }
  }
})();
