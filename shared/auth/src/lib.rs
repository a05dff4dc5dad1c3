//! HS256 JSON Web Tokens with two roles. Only HS256 is accepted: `alg: none` and every other
//! algorithm are refused before the signature is looked at.

mod hs256;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use quick_cache::UnitWeighter;
use quick_cache::sync::{Cache, DefaultLifecycle};
use serde::{Deserialize, Serialize};

use domain::{Caller, Role, UserId};
use rustc_hash::FxBuildHasher;

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    iat: u64,
    exp: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid or expired token")]
    Invalid,
}

/// Signs and verifies tokens with one shared secret. Deliberately not `Debug`: it holds the key.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens already verified, by their exact bytes, with their `exp`: a fan sends the same
    /// token with every request, and verifying it again was a tenth of the server's CPU.
    /// Sharded (no lock shared by every request), bounded (the least used go first), and
    /// a hit is held to the token's `exp` like a decoded one. Hashed fast: only verified
    /// tokens go in. quick_cache rather than moka: its hit is a few hundred instructions
    /// cheaper, on every request.
    verified: Cache<Box<[u8]>, (Caller, u64), UnitWeighter, FxBuildHasher>,
}

impl Jwt {
    /// Clock skew tolerated on `exp` and `nbf`.
    const LEEWAY_SECS: u64 = 5;
    /// Remembered tokens at most, which bounds the cache's memory.
    const MAX_VERIFIED: u64 = 100_000;

    pub fn new(secret: &[u8]) -> Self {
        hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = Self::LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            verified: Cache::with(
                Self::MAX_VERIFIED as usize,
                Self::MAX_VERIFIED,
                UnitWeighter,
                FxBuildHasher,
                DefaultLifecycle::default(),
            ),
        }
    }

    /// A token for `sub` with `role`, valid for `ttl` from now.
    pub fn issue(&self, role: Role, sub: &UserId, ttl: Duration) -> Result<String, String> {
        let iat = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: sub.as_str().to_owned(),
            role,
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| format!("cannot sign token: {err}"))
    }

    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        self.verify_at(token.as_bytes(), jsonwebtoken::get_current_timestamp())
    }

    /// `verify` at `now` (seconds since the epoch). A remembered token is held to the same
    /// expiry rule as a decoded one: valid until `exp` plus the leeway. A remembered token is
    /// found by its bytes, before they are checked to be text.
    fn verify_at(&self, token: &[u8], now: u64) -> Result<Caller, AuthError> {
        if let Some((caller, exp)) = self.verified.get(token) {
            if now <= exp.saturating_add(Self::LEEWAY_SECS) {
                return Ok(caller);
            }
            self.verified.remove(token);
            return Err(AuthError::Invalid);
        }
        let text = std::str::from_utf8(token).map_err(|_| AuthError::Invalid)?;
        // We never look a key up, so a header that names one (kid, jku, jwk, x5u, x5c) or
        // asks for extensions (crit) can only be an attempt to steer verification: refuse it.
        let header = jsonwebtoken::decode_header(text).map_err(|_| AuthError::Invalid)?;
        let names_a_key = header.kid.is_some()
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some();
        if names_a_key {
            return Err(AuthError::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(text, &self.decoding, &self.validation)
            .map_err(|_| AuthError::Invalid)?;
        let user = UserId::parse(&data.claims.sub).map_err(|_| AuthError::Invalid)?;
        let caller = Caller {
            user,
            role: data.claims.role,
        };
        self.verified
            .insert(token.into(), (caller.clone(), data.claims.exp));
        Ok(caller)
    }

    /// Reads `Authorization: Bearer <token>` and verifies it.
    pub fn verify_header(&self, authorization: Option<&[u8]>) -> Result<Caller, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let token = value.strip_prefix(b"Bearer ").ok_or(AuthError::Invalid)?;
        self.verify_at(token.trim_ascii(), jsonwebtoken::get_current_timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::parse("fan-1").unwrap()
    }

    #[test]
    fn issued_tokens_verify_with_their_role() {
        let jwt = Jwt::new(b"test-secret");
        let token = jwt
            .issue(Role::Admin, &user(), Duration::from_secs(60))
            .unwrap();
        let caller = jwt.verify(&token).unwrap();
        assert_eq!(caller.role, Role::Admin);
        assert_eq!(caller.user, user());
    }

    #[test]
    fn another_secret_is_refused() {
        let token = Jwt::new(b"one")
            .issue(Role::User, &user(), Duration::from_secs(60))
            .unwrap();
        assert_eq!(Jwt::new(b"two").verify(&token), Err(AuthError::Invalid));
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let jwt = Jwt::new(b"test-secret");
        let token = jwt
            .issue(Role::User, &user(), Duration::from_secs(60))
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(jwt.verify(&unsigned), Err(AuthError::Invalid));
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let jwt = Jwt::new(b"test-secret");
        let token = jwt
            .issue(Role::User, &user(), Duration::from_secs(60))
            .unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        assert!(jwt.verify_at(token.as_bytes(), now).is_ok());
        assert!(
            jwt.verify_at(token.as_bytes(), now + 60 + Jwt::LEEWAY_SECS)
                .is_ok()
        );
        assert_eq!(
            jwt.verify_at(token.as_bytes(), now + 61 + Jwt::LEEWAY_SECS + 1),
            Err(AuthError::Invalid)
        );
        // Another byte is another token: nothing is taken from the cache for it.
        let mut tampered = token.clone();
        tampered.push('x');
        assert_eq!(jwt.verify(&tampered), Err(AuthError::Invalid));
    }

    #[test]
    fn header_needs_the_bearer_scheme() {
        let jwt = Jwt::new(b"test-secret");
        let token = jwt
            .issue(Role::User, &user(), Duration::from_secs(60))
            .unwrap();
        assert!(
            jwt.verify_header(Some(format!("Bearer {token}").as_bytes()))
                .is_ok()
        );
        assert_eq!(jwt.verify_header(None), Err(AuthError::Missing));
        assert_eq!(
            jwt.verify_header(Some(format!("Basic {token}").as_bytes())),
            Err(AuthError::Invalid)
        );
    }
}
