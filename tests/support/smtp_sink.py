#!/usr/bin/env python3
"""A real SMTP server on loopback for kenpo-auth's `smtp` tests and benchmark.

It accepts every mail (aiosmtpd) and, unless --discard is given, writes each one to
--dir as two files:

  NNNNNN.eml          the bytes exactly as received (after DATA);
  NNNNNN.decoded.txt  what a mail client would show, decoded by Python's own `email`
                      package (an implementation independent of the Rust code under
                      test): one "Name: value" line per header, RFC 2047 words decoded
                      and folding removed, the envelope as X-Sink-Mail-From /
                      X-Sink-Rcpt-To, a blank line, then the text/plain body decoded
                      from its transfer encoding and charset.

The .decoded.txt file is written last and renamed into place, so a reader that sees
it can read both.

Recipients whose local part starts with `temp-fail` get `451` (try again later) and
those starting with `perm-fail` get `550` (refused for good) at RCPT TO. Every RCPT is
appended to attempts.log as "<code> <recipient>", and every greeting as
"EHLO <name>", so tests can count retries and connections.

Options: --port (required), --host (127.0.0.1), --dir, --discard, --tls-cert/--tls-key
with --implicit-tls (SMTPS, TLS from the first byte) or --starttls (STARTTLS required
before MAIL), --auth USER:PASSWORD (AUTH required), --idle-timeout SECONDS (close
idle connections, as real servers do). It prints "READY <port>" on stdout
once it accepts connections, and stops on SIGTERM/SIGINT.

Needs aiosmtpd: `python3 -m pip install aiosmtpd` (or Debian's python3-aiosmtpd).
"""

import argparse
import email
import email.policy
import os
import signal
import ssl
import sys
import threading

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
except ImportError:  # pragma: no cover - reported to the Rust test verbatim
    sys.stderr.write(
        "smtp_sink.py: the Python package aiosmtpd is missing; install it with "
        "`python3 -m pip install aiosmtpd` (or `apt-get install python3-aiosmtpd`)\n"
    )
    sys.exit(3)


def decoded_view(data: bytes, mail_from: str, rcpt_tos) -> str:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    lines = [f"X-Sink-Mail-From: {mail_from}"]
    lines += [f"X-Sink-Rcpt-To: {r}" for r in rcpt_tos]
    for name, value in msg.items():
        text = " ".join(str(value).split())
        lines.append(f"{name}: {text}")
    part = msg.get_body(preferencelist=("plain",))
    body = part.get_content() if part is not None else ""
    lines.append(f"X-Sink-Charset: {part.get_content_charset() if part else ''}")
    return "\n".join(lines) + "\n\n" + body


class Sink:
    def __init__(self, directory, discard):
        self.directory = directory
        self.discard = discard
        self.count = 0
        self.lock = threading.Lock()

    def log_attempt(self, code, address):
        if self.directory is None or self.discard:
            return
        with self.lock:
            with open(os.path.join(self.directory, "attempts.log"), "a") as f:
                f.write(f"{code} {address}\n")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.log_attempt("EHLO", hostname)
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].strip('"')
        if local.startswith("temp-fail"):
            self.log_attempt(451, address)
            return "451 4.3.0 Temporary failure, try again later"
        if local.startswith("perm-fail"):
            self.log_attempt(550, address)
            return "550 5.1.1 Mailbox unavailable"
        self.log_attempt(250, address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.discard or self.directory is None:
            return "250 OK"
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.directory, f"{n:06d}")
        data = envelope.original_content or b""
        with open(base + ".eml", "wb") as f:
            f.write(data)
        view = decoded_view(data, envelope.mail_from, envelope.rcpt_tos)
        with open(base + ".decoded.tmp", "w", encoding="utf-8") as f:
            f.write(view)
        os.replace(base + ".decoded.tmp", base + ".decoded.txt")
        return "250 OK"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            getattr(auth_data, "login", None) == self.user
            and getattr(auth_data, "password", None) == self.password
        )
        return AuthResult(success=ok, handled=False)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir")
    p.add_argument("--discard", action="store_true")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--implicit-tls", action="store_true")
    mode.add_argument("--starttls", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--idle-timeout", type=float)
    a = p.parse_args()

    if a.dir:
        os.makedirs(a.dir, exist_ok=True)
    handler = Sink(a.dir, a.discard)

    kwargs = {}
    ctx = None
    if a.implicit_tls or a.starttls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
    if a.starttls:
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = True
    if a.auth:
        user, _, password = a.auth.partition(":")
        kwargs["authenticator"] = Authenticator(user, password)
        kwargs["auth_required"] = True
        # Plain loopback may authenticate (the Rust side allows plain only there).
        kwargs["auth_require_tls"] = False

    if a.idle_timeout:
        # Close connections idle this long, as real servers do.
        kwargs["timeout"] = a.idle_timeout

    controller = Controller(
        handler,
        hostname=a.host,
        port=a.port,
        ssl_context=ctx if a.implicit_tls else None,
        server_hostname="localhost",
        ready_timeout=30,
        **kwargs,
    )
    controller.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"READY {a.port}", flush=True)
    stop.wait()
    controller.stop(no_assert=True)


if __name__ == "__main__":
    main()
