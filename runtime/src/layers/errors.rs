//! Answers every failure with JSON: a function's `ApiError`, and the errors of tower's own
//! layers below it (load shedding, timeout, the auth filter).

use std::convert::Infallible;
use std::task::{Context, Poll, ready};

use domain::{ApiError, ErrorKind};
use futures_util::future::{BoxFuture, FutureExt};
use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;
use tower::{BoxError, Layer, Service};

use crate::http::request::Request;
use crate::http::response::{self, Response};

#[derive(Clone, Copy)]
pub struct ErrorsLayer;

impl<S> Layer<S> for ErrorsLayer {
    type Service = Errors<S>;

    fn layer(&self, inner: S) -> Errors<S> {
        Errors {
            inner,
            not_ready: None,
        }
    }
}

pub struct Errors<S> {
    inner: S,
    /// A failure of `poll_ready`, answered by the next `call` (a service must stay ready).
    not_ready: Option<BoxError>,
}

impl<S: Clone> Clone for Errors<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            not_ready: None,
        }
    }
}

impl<S> Service<Request> for Errors<S>
where
    S: Service<Request, Response = Response, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if let Err(err) = ready!(self.inner.poll_ready(cx)) {
            self.not_ready = Some(err);
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(err) = self.not_ready.take() {
            return std::future::ready(Ok(into_response(err))).boxed();
        }
        self.inner
            .call(request)
            .map(|result| Ok(result.unwrap_or_else(into_response)))
            .boxed()
    }
}

fn into_response(err: BoxError) -> Response {
    let api_error = if let Some(err) = err.downcast_ref::<ApiError>() {
        return answer(err);
    } else if err.is::<Overloaded>() {
        ApiError::new(
            ErrorKind::Unavailable,
            "overloaded",
            "too many requests in flight, retry shortly",
        )
        .retry_after(1)
    } else if err.is::<Elapsed>() {
        ApiError::new(
            ErrorKind::Unavailable,
            "timeout",
            "the request took too long, retry shortly",
        )
        .retry_after(1)
    } else {
        tracing::error!(%err, "unexpected error");
        ApiError::internal()
    };
    answer(&api_error)
}

/// The answer to an error, whether a function returned it or a layer. A function's errors
/// come here straight from its handler, not boxed through the layers: no allocation, downcast
/// or copy for an answer as common as `sold_out`.
pub fn answer(err: &ApiError) -> Response {
    if err.kind == ErrorKind::Internal {
        tracing::error!(code = err.code, "internal error answered");
    }
    response::error(err)
}
