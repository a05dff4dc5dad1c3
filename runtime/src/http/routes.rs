//! The route table, and the router that serves each request with its function.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use auth::Jwt;
use domain::Role;
use domain::{ApiError, ErrorKind};
use futures_util::future::BoxFuture;
use http::Method;
use http::header::{ALLOW, HeaderValue};
use telemetry::HTTP_REQUESTS;
use tokio::sync::Semaphore;
use tower::Service;

use super::handlers::{self, AppState};
use super::request::{Call, Request};
use super::response::{self, Response};
use crate::config::{FunctionName, Settings};
use crate::layers::access_log::{Answered, RouteTemplate};
use crate::layers::auth::{Access, authenticate};
use crate::layers::errors::{answer, overloaded, timed_out};
use crate::layers::metrics::{RouteMetrics, method_label};

/// Which function's handler serves a route: matched, not called through a pointer, so that
/// its future is part of the request's one future rather than boxed on its own.
#[derive(Clone, Copy)]
enum Handler {
    CreateEvent,
    AddTicketCategory,
    GetAvailability,
    Reserve,
    Confirm,
    GetReservation,
    SetWaitingRoom,
    GetWaitingRoom,
    JoinQueue,
    GetQueuePlace,
    WatchQueue,
    Health,
    Ready,
    Metrics,
}

impl Handler {
    async fn handle(self, state: Arc<AppState>, call: Call) -> Result<Response, ApiError> {
        match self {
            Handler::CreateEvent => handlers::create_event(state, call).await,
            Handler::AddTicketCategory => handlers::add_ticket_category(state, call).await,
            Handler::GetAvailability => handlers::get_availability(state, call).await,
            Handler::Reserve => handlers::reserve(state, call).await,
            Handler::Confirm => handlers::confirm(state, call).await,
            Handler::GetReservation => handlers::get_reservation(state, call).await,
            Handler::SetWaitingRoom => handlers::set_waiting_room(state, call).await,
            Handler::GetWaitingRoom => handlers::get_waiting_room(state, call).await,
            Handler::JoinQueue => handlers::join_queue(state, call).await,
            Handler::GetQueuePlace => handlers::get_queue_place(state, call).await,
            Handler::WatchQueue => handlers::watch_queue(state, call).await,
            Handler::Health => handlers::health(state, call).await,
            Handler::Ready => handlers::ready(state, call).await,
            Handler::Metrics => handlers::metrics(state, call).await,
        }
    }
}

struct Route {
    /// The `function` label of the metrics.
    function: &'static str,
    /// The `--functions` name that mounts it; `None`: always mounted.
    mounted_by: Option<FunctionName>,
    method: Method,
    path: &'static str,
    access: Access,
    handler: Handler,
}

fn table() -> [Route; 14] {
    use FunctionName as F;
    const ADMIN: Access = Access::Role(Role::Admin);
    const USER: Access = Access::Role(Role::User);
    [
        Route {
            function: "create-event",
            mounted_by: Some(F::CreateEvent),
            method: Method::POST,
            path: "/events",
            access: ADMIN,
            handler: Handler::CreateEvent,
        },
        Route {
            function: "add-ticket-category",
            mounted_by: Some(F::AddTicketCategory),
            method: Method::POST,
            path: "/events/{id}/ticket-category",
            access: ADMIN,
            handler: Handler::AddTicketCategory,
        },
        Route {
            function: "get-availability",
            mounted_by: Some(F::GetAvailability),
            method: Method::GET,
            path: "/events/{id}/availability",
            access: Access::Public,
            handler: Handler::GetAvailability,
        },
        Route {
            function: "reserve",
            mounted_by: Some(F::Reserve),
            method: Method::POST,
            path: "/reserve",
            access: USER,
            handler: Handler::Reserve,
        },
        Route {
            function: "confirm",
            mounted_by: Some(F::Confirm),
            method: Method::POST,
            path: "/confirm",
            access: USER,
            handler: Handler::Confirm,
        },
        Route {
            function: "get-reservation",
            mounted_by: Some(F::GetReservation),
            method: Method::GET,
            path: "/reservations/{id}",
            access: Access::AnyRole,
            handler: Handler::GetReservation,
        },
        Route {
            function: "set-waiting-room",
            mounted_by: Some(F::SetWaitingRoom),
            method: Method::PUT,
            path: "/events/{id}/waiting-room",
            access: ADMIN,
            handler: Handler::SetWaitingRoom,
        },
        Route {
            function: "get-waiting-room",
            mounted_by: Some(F::GetWaitingRoom),
            method: Method::GET,
            path: "/events/{id}/waiting-room",
            access: Access::Public,
            handler: Handler::GetWaitingRoom,
        },
        Route {
            function: "join-queue",
            mounted_by: Some(F::JoinQueue),
            method: Method::POST,
            path: "/events/{id}/queue",
            access: USER,
            handler: Handler::JoinQueue,
        },
        Route {
            function: "get-queue-place",
            mounted_by: Some(F::GetQueuePlace),
            method: Method::GET,
            path: "/events/{id}/queue/me",
            access: USER,
            handler: Handler::GetQueuePlace,
        },
        Route {
            function: "watch-queue",
            mounted_by: Some(F::WatchQueue),
            method: Method::GET,
            path: "/events/{id}/queue/stream",
            access: USER,
            handler: Handler::WatchQueue,
        },
        Route {
            function: "health",
            mounted_by: None,
            method: Method::GET,
            path: "/health",
            access: Access::Public,
            handler: Handler::Health,
        },
        Route {
            function: "ready",
            mounted_by: None,
            method: Method::GET,
            path: "/ready",
            access: Access::Public,
            handler: Handler::Ready,
        },
        Route {
            function: "metrics",
            mounted_by: None,
            method: Method::GET,
            path: "/metrics",
            access: Access::Public,
            handler: Handler::Metrics,
        },
    ]
}

/// Every route the runtime can serve, as (method, path): what the OpenAPI document must list.
pub fn documented_routes() -> Vec<(Method, &'static str)> {
    table()
        .into_iter()
        .map(|route| (route.method, route.path))
        .collect()
}

/// A mounted route, built once: what each of its requests needs, with no per-request clone.
struct Endpoint {
    method: Method,
    template: RouteTemplate,
    access: Access,
    handler: Handler,
    metrics: RouteMetrics,
}

struct PathRoutes {
    endpoints: Vec<Endpoint>,
    allow: HeaderValue,
}

struct Routes {
    paths: matchit::Router<PathRoutes>,
    state: Arc<AppState>,
    jwt: Arc<Jwt>,
    /// One permit a request in flight, shared by every route (`MAX_IN_FLIGHT`).
    in_flight: Semaphore,
    timeout: Duration,
}

/// Matches the path, then the method, and serves the request with that route: metrics ->
/// load shedding -> concurrency limit -> timeout -> auth -> the function's handler.
#[derive(Clone)]
pub struct Router {
    routes: Arc<Routes>,
}

/// The router of the functions `settings` mounts.
pub fn router(settings: &Settings, state: Arc<AppState>, jwt: Arc<Jwt>) -> Router {
    let mut by_path: Vec<(&'static str, Vec<Endpoint>)> = Vec::new();
    for route in table() {
        if route
            .mounted_by
            .is_some_and(|function| !settings.mounts(function))
        {
            continue;
        }
        let endpoint = Endpoint {
            template: RouteTemplate {
                method: method_label(&route.method),
                path: route.path,
            },
            metrics: RouteMetrics::new(route.function, &route.method),
            method: route.method,
            access: route.access,
            handler: route.handler,
        };
        match by_path.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, endpoints)) => endpoints.push(endpoint),
            None => by_path.push((route.path, vec![endpoint])),
        }
    }
    let mut paths = matchit::Router::new();
    for (path, endpoints) in by_path {
        let allow = endpoints
            .iter()
            .map(|endpoint| endpoint.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let allow = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static(""));
        // The table's paths are distinct and well-formed; a clash is a programming error.
        if let Err(err) = paths.insert(path, PathRoutes { endpoints, allow }) {
            panic!("route table: {err}");
        }
    }
    Router {
        routes: Arc::new(Routes {
            paths,
            state,
            jwt,
            in_flight: Semaphore::new(settings.max_in_flight as usize),
            timeout: settings.request_timeout,
        }),
    }
}

impl Service<Request> for Router {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let routes = self.routes.clone();
        Box::pin(async move { Ok(routes.serve(request).await) })
    }
}

impl Routes {
    async fn serve(&self, request: Request) -> Response {
        let Ok(matched) = self.paths.at(request.uri().path()) else {
            return unrouted(&request, ApiError::not_found("not_found", "no such route"));
        };
        let routes = matched.value;
        let Some(endpoint) = routes
            .endpoints
            .iter()
            .find(|endpoint| endpoint.method == request.method())
        else {
            let err = ApiError::new(
                ErrorKind::MethodNotAllowed,
                "method_not_allowed",
                format!("{} is not allowed here", request.method()),
            );
            let mut response = unrouted(&request, err);
            response.headers_mut().insert(ALLOW, routes.allow.clone());
            return response;
        };
        let id = matched.params.get("id").map(str::to_owned);
        let started = Instant::now();
        let (mut response, code) = match self.call(endpoint, request, id).await {
            Ok(response) => (response, None),
            Err(err) => (answer(&err), Some(err.code)),
        };
        endpoint
            .metrics
            .record(response.status(), started.elapsed());
        let route = endpoint.template;
        response.extensions_mut().insert(Answered { route, code });
        response
    }

    async fn call(
        &self,
        endpoint: &Endpoint,
        request: Request,
        id: Option<String>,
    ) -> Result<Response, ApiError> {
        // Load shedding: past the limit a request is refused at once, never queued.
        let _in_flight = self.in_flight.try_acquire().map_err(|_| overloaded())?;
        let caller = authenticate(&self.jwt, endpoint.access, &request)?;
        let call = Call {
            request,
            caller,
            id,
        };
        let handled = endpoint.handler.handle(self.state.clone(), call);
        tokio::time::timeout(self.timeout, handled)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }
}

/// A request no function took: answered and counted here.
fn unrouted(request: &Request, err: ApiError) -> Response {
    let mut response = response::error(&err);
    let route = RouteTemplate {
        method: method_label(request.method()),
        path: "unmatched",
    };
    let code = Some(err.code);
    response.extensions_mut().insert(Answered { route, code });
    HTTP_REQUESTS
        .with_label_values(&[
            "none",
            method_label(request.method()),
            response.status().as_str(),
        ])
        .inc();
    response
}
