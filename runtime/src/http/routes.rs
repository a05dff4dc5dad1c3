//! The route table, and the router that dispatches each request to its function's stack.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use auth::Jwt;
use domain::Role;
use domain::{ApiError, ErrorKind};
use futures_util::future::{BoxFuture, Either};
use http::Method;
use http::header::{ALLOW, HeaderValue};
use telemetry::HTTP_REQUESTS;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use super::handlers::{self, AppState};
use super::request::{PathId, Request};
use super::response::{self, Response};
use crate::config::{FunctionName, Settings};
use crate::layers::access_log::{self, RouteTemplate};
use crate::layers::auth::{Access, AuthLayer};
use crate::layers::errors::{ErrorsLayer, answer};
use crate::layers::metrics::{MetricsLayer, method_label};

type Handler = fn(Arc<AppState>, Request) -> BoxFuture<'static, Result<Response, ApiError>>;

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
            handler: |state, request| Box::pin(handlers::create_event(state, request)),
        },
        Route {
            function: "add-ticket-category",
            mounted_by: Some(F::AddTicketCategory),
            method: Method::POST,
            path: "/events/{id}/ticket-category",
            access: ADMIN,
            handler: |state, request| Box::pin(handlers::add_ticket_category(state, request)),
        },
        Route {
            function: "get-availability",
            mounted_by: Some(F::GetAvailability),
            method: Method::GET,
            path: "/events/{id}/availability",
            access: Access::Public,
            handler: |state, request| Box::pin(handlers::get_availability(state, request)),
        },
        Route {
            function: "reserve",
            mounted_by: Some(F::Reserve),
            method: Method::POST,
            path: "/reserve",
            access: USER,
            handler: |state, request| Box::pin(handlers::reserve(state, request)),
        },
        Route {
            function: "confirm",
            mounted_by: Some(F::Confirm),
            method: Method::POST,
            path: "/confirm",
            access: USER,
            handler: |state, request| Box::pin(handlers::confirm(state, request)),
        },
        Route {
            function: "get-reservation",
            mounted_by: Some(F::GetReservation),
            method: Method::GET,
            path: "/reservations/{id}",
            access: Access::AnyRole,
            handler: |state, request| Box::pin(handlers::get_reservation(state, request)),
        },
        Route {
            function: "set-waiting-room",
            mounted_by: Some(F::SetWaitingRoom),
            method: Method::PUT,
            path: "/events/{id}/waiting-room",
            access: ADMIN,
            handler: |state, request| Box::pin(handlers::set_waiting_room(state, request)),
        },
        Route {
            function: "get-waiting-room",
            mounted_by: Some(F::GetWaitingRoom),
            method: Method::GET,
            path: "/events/{id}/waiting-room",
            access: Access::Public,
            handler: |state, request| Box::pin(handlers::get_waiting_room(state, request)),
        },
        Route {
            function: "join-queue",
            mounted_by: Some(F::JoinQueue),
            method: Method::POST,
            path: "/events/{id}/queue",
            access: USER,
            handler: |state, request| Box::pin(handlers::join_queue(state, request)),
        },
        Route {
            function: "get-queue-place",
            mounted_by: Some(F::GetQueuePlace),
            method: Method::GET,
            path: "/events/{id}/queue/me",
            access: USER,
            handler: |state, request| Box::pin(handlers::get_queue_place(state, request)),
        },
        Route {
            function: "watch-queue",
            mounted_by: Some(F::WatchQueue),
            method: Method::GET,
            path: "/events/{id}/queue/stream",
            access: USER,
            handler: |state, request| Box::pin(handlers::watch_queue(state, request)),
        },
        Route {
            function: "health",
            mounted_by: None,
            method: Method::GET,
            path: "/health",
            access: Access::Public,
            handler: |state, request| Box::pin(handlers::health(state, request)),
        },
        Route {
            function: "ready",
            mounted_by: None,
            method: Method::GET,
            path: "/ready",
            access: Access::Public,
            handler: |state, request| Box::pin(handlers::ready(state, request)),
        },
        Route {
            function: "metrics",
            mounted_by: None,
            method: Method::GET,
            path: "/metrics",
            access: Access::Public,
            handler: |state, request| Box::pin(handlers::metrics(state, request)),
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

type RouteService = BoxCloneSyncService<Request, Response, Infallible>;

struct PathRoutes {
    endpoints: Vec<(Method, RouteService)>,
    allow: HeaderValue,
}

/// Matches the path, then the method, and hands the request to that route's service.
#[derive(Clone)]
pub struct Router {
    paths: Arc<matchit::Router<PathRoutes>>,
}

/// The router of the functions `settings` mounts. Each route gets the same stack:
/// metrics -> errors as JSON -> load shedding -> concurrency limit -> timeout -> auth.
pub fn router(settings: &Settings, state: Arc<AppState>, jwt: Arc<Jwt>) -> Router {
    let limit = GlobalConcurrencyLimitLayer::new(settings.max_in_flight as usize);
    let mut by_path: Vec<(&'static str, Vec<(Method, RouteService)>)> = Vec::new();
    for route in table() {
        if route
            .mounted_by
            .is_some_and(|function| !settings.mounts(function))
        {
            continue;
        }
        let (state, handler) = (state.clone(), route.handler);
        let template = RouteTemplate {
            method: method_label(&route.method),
            path: route.path,
        };
        let service = ServiceBuilder::new()
            .map_response(move |mut response: Response| {
                response.extensions_mut().insert(template);
                response
            })
            .layer(MetricsLayer::new(route.function, &route.method))
            .layer(ErrorsLayer)
            .load_shed()
            .layer(limit.clone())
            .timeout(settings.request_timeout)
            .layer(AuthLayer::new(jwt.clone(), route.access))
            .service_fn(move |request| {
                let response = handler(state.clone(), request);
                async move { Ok::<_, BoxError>(response.await.unwrap_or_else(|err| answer(&err))) }
            });
        let service = BoxCloneSyncService::new(service);
        match by_path.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, endpoints)) => endpoints.push((route.method, service)),
            None => by_path.push((route.path, vec![(route.method, service)])),
        }
    }
    let mut paths = matchit::Router::new();
    for (path, endpoints) in by_path {
        let allow = endpoints
            .iter()
            .map(|(method, _)| method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let allow = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static(""));
        // The table's paths are distinct and well-formed; a clash is a programming error.
        if let Err(err) = paths.insert(path, PathRoutes { endpoints, allow }) {
            panic!("route table: {err}");
        }
    }
    Router {
        paths: Arc::new(paths),
    }
}

type RouterFuture =
    Either<tower::util::Oneshot<RouteService, Request>, Ready<Result<Response, Infallible>>>;

impl Service<Request> for Router {
    type Response = Response;
    type Error = Infallible;
    type Future = RouterFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let Ok(matched) = self.paths.at(request.uri().path()) else {
            return Either::Right(ready(Ok(unrouted(
                &request,
                ApiError::not_found("not_found", "no such route"),
            ))));
        };
        let routes = matched.value;
        if let Some(id) = matched.params.get("id") {
            let id = PathId(id.to_owned());
            request.extensions_mut().insert(id);
        }
        match routes
            .endpoints
            .iter()
            .find(|(method, _)| method == request.method())
        {
            Some((_, service)) => Either::Left(service.clone().oneshot(request)),
            None => {
                let err = ApiError::new(
                    ErrorKind::MethodNotAllowed,
                    "method_not_allowed",
                    format!("{} is not allowed here", request.method()),
                );
                let mut response = unrouted(&request, err);
                response.headers_mut().insert(ALLOW, routes.allow.clone());
                Either::Right(ready(Ok(response)))
            }
        }
    }
}

/// A request no function took: answered and counted here.
fn unrouted(request: &Request, err: ApiError) -> Response {
    let mut response = response::error(&err);
    let template = access_log::unrouted(request.method(), "unmatched");
    response.extensions_mut().insert(template);
    HTTP_REQUESTS
        .with_label_values(&[
            "none",
            method_label(request.method()),
            response.status().as_str(),
        ])
        .inc();
    response
}
