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

document.addEventListener("DOMContentLoaded", function () {
  wirePasswordToggles();
  wireOtpScreen();
});
