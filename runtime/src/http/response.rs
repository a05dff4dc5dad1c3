//! Response bodies, and the one mapping from an error's kind to an HTTP status.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use domain::{ApiError, ErrorKind};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use serde::Serialize;
use tokio::sync::mpsc;
use watch_queue::QueueEvent;

pub type Response = http::Response<Body>;

/// A response's body: whole, or a stream of Server-Sent Events that lasts as long as the
/// function sends them.
pub enum Body {
    Full(Full<Bytes>),
    Events(mpsc::Receiver<QueueEvent>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(full) => Pin::new(full).poll_frame(cx),
            Body::Events(events) => events
                .poll_recv(cx)
                .map(|event| event.map(|event| Ok(Frame::data(server_sent(&event))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(full) => full.is_end_stream(),
            Body::Events(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(full) => full.size_hint(),
            Body::Events(_) => SizeHint::default(),
        }
    }
}

/// What tower-http's layers answer with when they answer themselves (a CORS preflight).
impl Default for Body {
    fn default() -> Self {
        Body::Full(Full::default())
    }
}

/// One Server-Sent Event: `id:` lets a client that reconnects say what it saw last, `retry:`
/// how long it waits first.
fn server_sent(event: &QueueEvent) -> Bytes {
    let data = serde_json::to_string(&event.view).unwrap_or_default();
    let retry = watch_queue::RETRY_MS;
    Bytes::from(format!(
        "id: {}\nretry: {retry}\ndata: {data}\n\n",
        event.id
    ))
}

/// A stream of Server-Sent Events.
pub fn events(events: mpsc::Receiver<QueueEvent>) -> Response {
    let mut response = http::Response::new(Body::Events(events));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx (the Compose gateway) would otherwise buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => with_body(status, JSON, body),
        Err(err) => {
            tracing::error!(%err, "response did not serialise");
            error(&ApiError::internal())
        }
    }
}

pub fn with_body(
    status: StatusCode,
    content_type: HeaderValue,
    body: impl Into<Bytes>,
) -> Response {
    let mut response = http::Response::new(Body::Full(Full::new(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// `{"error":{"code","message"}}` with the status of the error's kind.
pub fn error(err: &ApiError) -> Response {
    let mut response = with_body(status_of(err.kind), JSON, err.to_json());
    if let Some(seconds) = err.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
