//! JWT authentication and role checks, per route: 401 without a valid token, 403 for a
//! valid token of the wrong role.

use auth::{AuthError, Jwt};
use domain::{ApiError, ErrorKind};
use domain::{Caller, Role};
use http::header::AUTHORIZATION;

use crate::http::request::Request;

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    Public,
    /// Any valid token; the function decides what the caller may see.
    AnyRole,
    Role(Role),
}

/// The verified caller of a request to a route of `access` (`None` on a public route), or
/// why it is refused.
pub fn authenticate(
    jwt: &Jwt,
    access: Access,
    request: &Request,
) -> Result<Option<Caller>, ApiError> {
    let required = match access {
        Access::Public => return Ok(None),
        Access::AnyRole => None,
        Access::Role(role) => Some(role),
    };
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(|value| value.as_bytes());
    let caller = jwt.verify_header(header).map_err(|err| {
        let message = match err {
            AuthError::Missing => "a bearer token is required",
            AuthError::Invalid => "the token is invalid or expired",
        };
        ApiError::new(ErrorKind::Unauthorized, "unauthorized", message)
    })?;
    if let Some(role) = required.filter(|role| *role != caller.role) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "forbidden",
            format!("this needs the {} role", role.as_str()),
        ));
    }
    Ok(Some(caller))
}
