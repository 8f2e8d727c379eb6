//! Websockets leave actix-http at the upgrade. actix-http hands every request that asks for a
//! websocket to this upgrade service together with its TCP stream; the service puts an empty
//! [`TakeoverSlot`] on the request and runs it through the same actix-web app as any request
//! (routing, authentication, room join: [`super::upgrade`]). When the app accepted the socket
//! it filled the slot and answered 101: the service writes that answer and runs the connection
//! on the bare stream ([`super::socket::Socket`]). Any other answer is written as is and the
//! stream closed.
//!
//! Why: under actix-http a websocket kept its HTTP dispatcher, its buffers and actix-ws's
//! channels for as long as it lived (about 14 KiB an idle socket), and every outbound frame
//! crossed a channel and the dispatcher before reaching the kernel, one `send` per frame.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use actix_codec::Framed;
use actix_http::{h1, HttpMessage as _, Request};
use actix_web::body::{self, BoxBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::HttpResponse;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tracing::Instrument as _;

use super::connection::Connection;
use super::outbox::OutboxReceiver;
use super::socket::Socket;
use super::tasks::SocketTasks;

/// How long writing a refusal may take before the stream is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A socket the app accepted, waiting for its stream.
pub struct Accepted {
    pub connection: Connection,
    pub receiver: OutboxReceiver,
    pub span: tracing::Span,
}

/// Where the app leaves an accepted socket for the upgrade service (a request extension).
#[derive(Clone, Default)]
pub struct TakeoverSlot(Rc<RefCell<Option<Accepted>>>);

impl TakeoverSlot {
    pub fn fill(&self, accepted: Accepted) {
        *self.0.borrow_mut() = Some(accepted);
    }

    fn take(&self) -> Option<Accepted> {
        self.0.borrow_mut().take()
    }
}

/// Answers one upgrade request on its stream; `app` is the actix-web app's service, `tasks`
/// counts the connections it starts.
pub async fn serve<S>(
    app: Rc<S>,
    tasks: SocketTasks,
    request: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    let slot = TakeoverSlot::default();
    request.extensions_mut().insert(slot.clone());
    let head_only = request.method() == Method::HEAD;
    let response = match app.call(request).await {
        Ok(response) => response.into_parts().1,
        Err(error) => error.error_response(),
    };
    let parts = framed.into_parts();
    // Answers to requests pipelined ahead of this one that actix-http had not written yet: they
    // go first, or the client would read this answer as theirs.
    let (mut io, early, mut out) = (parts.io, parts.read_buf, parts.write_buf);
    match slot.take() {
        Some(accepted) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            out.extend_from_slice(&response_head(&response, None));
            if let Err(error) = io.write_all(&out).await {
                tracing::debug!(%error, "the client went before the handshake was answered");
                return Ok(());
            }
            let Accepted { connection, mut receiver, span } = accepted;
            let limits = &connection.limits;
            let socket = Socket::new(
                receiver.attach(io),
                early,
                limits.max_message_bytes,
                limits.slow_consumer_timeout(),
            );
            actix_web::rt::spawn(connection.run(socket, receiver, tasks.enter()).instrument(span));
        }
        _ => {
            let (response, body) = response.into_parts();
            let refusal = async {
                let body = body::to_bytes(body).await.unwrap_or_default();
                out.extend_from_slice(&response_head(&response, Some(body.len())));
                if !head_only {
                    out.extend_from_slice(&body);
                }
                io.write_all(&out).await?;
                io.shutdown().await?;
                // Bytes the client sent already are read and dropped: closing with unread bytes
                // would reset the stream, and a reset can lose the answer.
                let mut sink = [0; 1024];
                while matches!(io.try_read(&mut sink), Ok(1..)) {}
                Ok::<_, std::io::Error>(())
            };
            let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, refusal).await;
        }
    }
    Ok(())
}

/// The status line and headers of `response`; `body_length` for an answer that is not a 101,
/// which is the last on its connection.
fn response_head<B>(response: &HttpResponse<B>, body_length: Option<usize>) -> Vec<u8> {
    let status = response.status();
    let reason = response.head().reason.unwrap_or_else(|| status.canonical_reason().unwrap_or(""));
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).into_bytes();
    let framing = [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONNECTION];
    for (name, value) in response.headers() {
        if body_length.is_some() && framing.contains(name) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if let Some(length) = body_length {
        head.extend_from_slice(format!("content-length: {length}\r\nconnection: close\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}
