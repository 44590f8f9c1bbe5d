//! Opening SMTP connections on our own no-delay sockets, and keeping idle ones.
//!
//! lettre 0.11 opens its sockets with Nagle's algorithm on. It writes the message and
//! the terminating `.` as two small writes and then waits for the reply, so the second
//! write sits in the kernel until the server's delayed ACK (~40 ms on Linux): about
//! 44 ms per message even to loopback. We open the `TcpStream` ourselves with
//! `TCP_NODELAY` and hand it to lettre's `AsyncSmtpConnection::connect_with_transport`.
//! For implicit TLS lettre does the handshake on our socket (its `AsyncNetworkStream`),
//! and a small adapter gives that stream back to lettre as a tokio stream.
//!
//! lettre's own pool only pools connections it opened itself, so we keep a small pool
//! of `AsyncSmtpConnection`s here.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[allow(deprecated)] // lettre's only handle on a TLS stream over a socket we opened.
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::{
    authentication::{Credentials, Mechanism},
    extension::ClientId,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::SmtpError;
use super::config::SmtpSecurity;

/// What it takes to open one ready-to-send connection: TCP (no delay), TLS, `EHLO`,
/// `AUTH`.
pub(super) struct Connector {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) security: SmtpSecurity,
    pub(super) tls: Option<TlsParameters>,
    pub(super) hello: ClientId,
    pub(super) credentials: Option<Credentials>,
    pub(super) timeout: Duration,
}

impl Connector {
    /// Opens a connection, all steps within the configured timeout.
    pub(super) async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        tokio::time::timeout(self.timeout, self.connect_unbounded())
            .await
            .map_err(|_| SmtpError::Timeout)?
    }

    async fn connect_unbounded(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let tcp = self.open_socket().await?;
        let mut conn = match (self.security, &self.tls) {
            (SmtpSecurity::ImplicitTls, Some(tls)) => {
                #[allow(deprecated)]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                stream
                    .upgrade_tls(tls.clone())
                    .await
                    .map_err(SmtpError::from_lettre)?;
                AsyncSmtpConnection::connect_with_transport(
                    Box::new(TlsOverOwnSocket(stream)),
                    &self.hello,
                )
                .await
            }
            (SmtpSecurity::ImplicitTls, None) => return Err(SmtpError::TlsNotConfigured),
            _ => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await,
        }
        .map_err(SmtpError::from_lettre)?;
        if self.security == SmtpSecurity::StartTls {
            let tls = self.tls.clone().ok_or(SmtpError::TlsNotConfigured)?;
            // lettre refuses (rather than continuing in the clear) when the server does
            // not offer STARTTLS.
            conn.starttls(tls, &self.hello)
                .await
                .map_err(SmtpError::from_lettre)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(SmtpError::from_lettre)?;
        }
        Ok(conn)
    }

    /// Resolves the host and connects to the first address that answers, with
    /// `TCP_NODELAY` set.
    async fn open_socket(&self) -> Result<TcpStream, SmtpError> {
        let addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(SmtpError::Connect)?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    stream.set_nodelay(true).map_err(SmtpError::Connect)?;
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(SmtpError::Connect(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "host resolved to no address")
        })))
    }
}

/// lettre's TLS stream (over our socket) seen as a tokio stream, so that
/// `connect_with_transport` can speak SMTP over it.
#[allow(deprecated)]
#[derive(Debug)]
struct TlsOverOwnSocket(AsyncNetworkStream);

impl AsyncRead for TlsOverOwnSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let dst = buf.initialize_unfilled();
        match futures_io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TlsOverOwnSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TlsOverOwnSocket {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

/// An idle connection and since when it has been idle.
struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// A bound on open connections and a stack of idle ones.
pub(super) struct Pool {
    /// One permit per connection that may be open (in use or idle).
    pub(super) slots: Semaphore,
    idle: Mutex<Vec<Idle>>,
    idle_timeout: Duration,
}

impl Pool {
    pub(super) fn new(max_connections: usize, idle_timeout: Duration) -> Self {
        Pool {
            slots: Semaphore::new(max_connections.max(1)),
            idle: Mutex::new(Vec::new()),
            idle_timeout,
        }
    }

    /// The most recently used idle connection that is not too old; older ones are
    /// dropped (closed without `QUIT`).
    pub(super) fn take(&self) -> Option<AsyncSmtpConnection> {
        let mut expired = Vec::new();
        let found = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some(entry) = idle.pop() {
                if entry.since.elapsed() < self.idle_timeout && !entry.conn.has_broken() {
                    found = Some(entry.conn);
                    break;
                }
                expired.push(entry);
            }
            found
        };
        drop(expired);
        found
    }

    /// Keeps a connection that just sent successfully.
    pub(super) fn put(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(Idle {
            conn,
            since: Instant::now(),
        });
    }

    /// Removes every idle connection (to close them, or because one turned out stale).
    pub(super) fn drain(&self) -> Vec<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.drain(..).map(|i| i.conn).collect()
    }

    /// How many connections are idle now.
    pub(super) fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
