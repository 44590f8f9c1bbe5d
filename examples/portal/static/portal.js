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

// 暗証キー入力: closing this screen kills the 暗証キー (L3). The page reports `pagehide`
// with a beacon, and sends a heartbeat every few seconds so the server also notices a
// screen that vanished without a beacon (the policy's otp_screen_heartbeat). Both carry
// the session's CSRF token and this page's own token in the body.
function wireOtpScreen() {
  var screen = document.getElementById("otp-screen");
  if (!screen) {
    return;
  }
  var closeUrl = screen.getAttribute("data-close-url");
  var heartbeatUrl = screen.getAttribute("data-heartbeat-url");
  var every = parseInt(screen.getAttribute("data-heartbeat-ms"), 10) || 15000;
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
  window.addEventListener("pagehide", function () {
    if (!leaving) {
      navigator.sendBeacon(closeUrl, body());
    }
  });
  // Back from the back-forward cache: the key was closed when the page was hidden, so
  // ask the server again instead of showing a stale form.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      window.location.reload();
    }
  });
  var timer = window.setInterval(function () {
    fetch(heartbeatUrl, {
      method: "POST",
      body: body(),
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (response) {
      if (response.status === 410) {
        window.clearInterval(timer);
        leaving = true;
        window.location.assign("/login?reason=otp_closed");
      }
    }).catch(function () {
      // Offline for a moment: the next heartbeat tries again; the server's own
      // deadline decides.
    });
  }, every);
}

document.addEventListener("DOMContentLoaded", function () {
  wirePasswordToggles();
  wireOtpScreen();
});
