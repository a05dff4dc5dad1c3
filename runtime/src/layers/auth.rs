//! JWT authentication and role checks, per route: 401 without a valid token, 403 for a
//! valid token of the wrong role. The verified caller goes into the request's extensions.

use std::sync::Arc;

use auth::{AuthError, Jwt};
use domain::Role;
use domain::{ApiError, ErrorKind};
use http::header::AUTHORIZATION;
use tower::BoxError;
use tower::filter::{FilterLayer, Predicate};

use crate::http::request::Request;

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    Public,
    /// Any valid token; the function decides what the caller may see.
    AnyRole,
    Role(Role),
}

#[derive(Clone)]
pub struct Authenticate {
    jwt: Arc<Jwt>,
    access: Access,
}

pub struct AuthLayer;

impl AuthLayer {
    #[allow(clippy::new_ret_no_self)]
    pub fn new(jwt: Arc<Jwt>, access: Access) -> FilterLayer<Authenticate> {
        FilterLayer::new(Authenticate { jwt, access })
    }
}

impl Predicate<Request> for Authenticate {
    type Request = Request;

    fn check(&mut self, mut request: Request) -> Result<Request, BoxError> {
        let required = match self.access {
            Access::Public => return Ok(request),
            Access::AnyRole => None,
            Access::Role(role) => Some(role),
        };
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .map(|value| value.as_bytes());
        let caller = self.jwt.verify_header(header).map_err(|err| {
            let message = match err {
                AuthError::Missing => "a bearer token is required",
                AuthError::Invalid => "the token is invalid or expired",
            };
            ApiError::new(ErrorKind::Unauthorized, "unauthorized", message)
        })?;
        if required.is_some_and(|role| role != caller.role) {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                "forbidden",
                format!("this needs the {} role", required.map_or("", Role::as_str)),
            )
            .into());
        }
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}
