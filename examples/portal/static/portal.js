// さくらけんぽWeb (kenpo-auth example portal): the only script of the site, served as a
// static file so the CSP can forbid inline scripts (script-src 'self').
"use strict";

// 「パスワードを表示する」: a checkbox with data-toggle-password="id1 id2" shows or hides
// the named password fields.
function wirePasswordToggles() {
  document.querySelectorAll("input[data-toggle-password]").forEach(function (box) {
    box.addEventListener("change", function () {
      box.getAttribute("data-toggle-password").split(" ").forEach(function (id) {
        var field = document.getElementById(id);
        if (field) {
          field.type = box.checked ? "text" : "password";
        }
      });
    });
  });
}

// 暗証キー入力: closing this screen kills the 暗証キー (L3). Only closing it: a phone that
// switches to the mail app hides or freezes the page, and its code must stay good for
// its whole lifetime. So there is no timer here (a hidden page's timers stop, and a
// missed heartbeat would look like a closed screen); the page reports `pagehide` with a
// beacon, unless the browser keeps the page in its back-forward cache (`persisted`):
// that page is only hidden and may come back. A tab that is closed, a navigation away,
// a newer login and the code's own lifetime still end it. The beacon carries the
// session's CSRF token and this page's own token in the body.
function wireOtpScreen() {
  var screen = document.getElementById("otp-screen");
  if (!screen) {
    return;
  }
  var closeUrl = screen.getAttribute("data-close-url");
  var body = function () {
    var p = new URLSearchParams();
    p.set("csrf", screen.getAttribute("data-csrf"));
    p.set("page_token", screen.getAttribute("data-page-token"));
    return p;
  };
  // Submitting this page's own forms (ログイン, 暗証キー再請求) is not closing it.
  var leaving = false;
  document.querySelectorAll("#otp-screen form").forEach(function (form) {
    form.addEventListener("submit", function () {
      leaving = true;
    });
  });
  window.addEventListener("pagehide", function (event) {
    if (!leaving && !event.persisted) {
      navigator.sendBeacon(closeUrl, body());
    }
  });
  // Back from the back-forward cache: ask the server again, which shows the screen if
  // its code is still good and says why if not.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      leaving = true;
      window.location.reload();
    }
  });
}

// パスキー (WebAuthn): the options come from the server as webauthn-rs writes them
// (binary fields as base64url); the answers go back the same way, in a form post that
// carries the CSRF token like every other post.
function b64uToBytes(s) {
  var b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  var out = new Uint8Array(b.length);
  for (var i = 0; i < b.length; i++) {
    out[i] = b.charCodeAt(i);
  }
  return out.buffer;
}

function bytesToB64u(buf) {
  var bytes = new Uint8Array(buf);
  var s = "";
  for (var i = 0; i < bytes.length; i++) {
    s += String.fromCharCode(bytes[i]);
  }
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function postForm(url, fields) {
  var p = new URLSearchParams();
  Object.keys(fields).forEach(function (k) {
    p.set(k, fields[k]);
  });
  return fetch(url, { method: "POST", body: p, credentials: "same-origin" }).then(function (r) {
    return r.json();
  });
}

// ログイン: 「パスキーでログイン」.
function wirePasskeyLogin() {
  var button = document.getElementById("passkey-login");
  var screen = document.getElementById("factor-screen");
  if (!button || !screen) {
    return;
  }
  button.addEventListener("click", function () {
    var options = JSON.parse(button.getAttribute("data-options")).publicKey;
    options.challenge = b64uToBytes(options.challenge);
    (options.allowCredentials || []).forEach(function (c) {
      c.id = b64uToBytes(c.id);
    });
    navigator.credentials.get({ publicKey: options }).then(function (cred) {
      var r = cred.response;
      var credential = {
        id: cred.id,
        rawId: bytesToB64u(cred.rawId),
        type: cred.type,
        extensions: {},
        response: {
          authenticatorData: bytesToB64u(r.authenticatorData),
          clientDataJSON: bytesToB64u(r.clientDataJSON),
          signature: bytesToB64u(r.signature),
          userHandle: r.userHandle ? bytesToB64u(r.userHandle) : null
        }
      };
      return postForm("/login/factor/passkey", {
        csrf: screen.getAttribute("data-csrf"),
        page_token: screen.getAttribute("data-page-token"),
        credential: JSON.stringify(credential)
      });
    }).then(function (answer) {
      if (answer.redirect) {
        window.location.assign(answer.redirect);
      } else {
        document.getElementById("passkey-error").hidden = false;
      }
    }).catch(function () {
      document.getElementById("passkey-error").hidden = false;
    });
  });
}

// 2段階認証の設定: 「パスキーを登録」.
function wirePasskeyRegistration() {
  var form = document.getElementById("passkey-register-form");
  var page = document.getElementById("settings-2fa");
  if (!form || !page) {
    return;
  }
  var csrf = page.getAttribute("data-csrf");
  var failed = function () {
    document.getElementById("passkey-register-error").hidden = false;
  };
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var name = document.getElementById("passkey_name").value;
    postForm("/settings/passkey/start", { csrf: csrf, name: name }).then(function (answer) {
      if (!answer.options) {
        throw new Error(answer.error || "start");
      }
      var options = answer.options.publicKey;
      options.challenge = b64uToBytes(options.challenge);
      options.user.id = b64uToBytes(options.user.id);
      (options.excludeCredentials || []).forEach(function (c) {
        c.id = b64uToBytes(c.id);
      });
      return navigator.credentials.create({ publicKey: options });
    }).then(function (cred) {
      var credential = {
        id: cred.id,
        rawId: bytesToB64u(cred.rawId),
        type: cred.type,
        extensions: {},
        response: {
          attestationObject: bytesToB64u(cred.response.attestationObject),
          clientDataJSON: bytesToB64u(cred.response.clientDataJSON)
        }
      };
      return postForm("/settings/passkey/finish", {
        csrf: csrf,
        credential: JSON.stringify(credential)
      });
    }).then(function (answer) {
      if (!answer.ok) {
        throw new Error(answer.error || "finish");
      }
      var list = document.getElementById("passkey-recovery-codes");
      (answer.recovery_codes || []).forEach(function (code) {
        var li = document.createElement("li");
        li.textContent = code;
        list.appendChild(li);
      });
      document.getElementById("passkey-registered").hidden = false;
    }).catch(failed);
  });
}

// ログイン: 「パスキーでログイン」 without a login ID and password (the device offers
// this site's passkeys; the one chosen names its account).
function wirePasskeyOnlyLogin() {
  var button = document.getElementById("passkey-only-login");
  var box = document.getElementById("passkey-only");
  if (!button || !box) {
    return;
  }
  var csrf = box.getAttribute("data-csrf");
  var failed = function () {
    document.getElementById("passkey-only-error").hidden = false;
  };
  button.addEventListener("click", function () {
    postForm("/login/passkey/start", { csrf: csrf }).then(function (answer) {
      if (!answer.options) {
        throw new Error(answer.error || "start");
      }
      var options = answer.options.publicKey;
      options.challenge = b64uToBytes(options.challenge);
      (options.allowCredentials || []).forEach(function (c) {
        c.id = b64uToBytes(c.id);
      });
      return navigator.credentials.get({ publicKey: options });
    }).then(function (cred) {
      var r = cred.response;
      return postForm("/login/passkey/finish", {
        csrf: csrf,
        credential: JSON.stringify({
          id: cred.id,
          rawId: bytesToB64u(cred.rawId),
          type: cred.type,
          extensions: {},
          response: {
            authenticatorData: bytesToB64u(r.authenticatorData),
            clientDataJSON: bytesToB64u(r.clientDataJSON),
            signature: bytesToB64u(r.signature),
            userHandle: r.userHandle ? bytesToB64u(r.userHandle) : null
          }
        })
      });
    }).then(function (answer) {
      if (answer.redirect) {
        window.location.assign(answer.redirect);
      } else {
        failed();
      }
    }).catch(failed);
  });
}

document.addEventListener("DOMContentLoaded", function () {
  wirePasswordToggles();
  wireOtpScreen();
  wirePasskeyLogin();
  wirePasskeyRegistration();
  wirePasskeyOnlyLogin();
});
