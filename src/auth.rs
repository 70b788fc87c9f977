//! Bearer-token authentication as an extractor: a handler that takes a
//! `Caller` only runs for a live token, and checks its role with `require`.
//!
//! Secrets are never compared in memory: the presented token is hashed
//! (SHA-256) and looked up by digest through the unique index on
//! `tokens.token_hash` (see `db::tokens`). A timing difference in that lookup
//! can only reveal something about a digest, not about a secret, so no
//! constant-time comparison is needed. Live tokens are cached by digest for
//! two seconds (`cache::TokenCache`); a revocation clears that cache, so a
//! revoked token fails on the very next request to the replica that revoked
//! it, and within two seconds on the others. The Authorization header is read
//! here only; the request logger (`tracing_actix_web` default span) records
//! method, route, target, host and user agent, never headers, and the UI
//! keeps tokens out of URLs (checked by tests/api/auth.rs and, for the
//! logs, tests/api/shutdown.rs).
use crate::domain::Role;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: i64,
    pub name: String,
    pub role: Role,
    /// May decide escalated cases (senior reviewers and admins).
    pub senior: bool,
}

impl Caller {
    /// 403 unless this caller's role may act as `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "this needs the {} role; your token is {}",
                    needed.as_str(),
                    self.role.as_str()
                ),
            ))
        }
    }
    /// 403 unless the caller has one of these roles.
    pub fn require_any(&self, needed: &[Role]) -> Result<(), ApiError> {
        if needed.iter().any(|r| self.role.allows(*r)) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("your token's role ({}) may not do this", self.role.as_str()),
            ))
        }
    }
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, msg)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("no state")))?;
            let header = header.ok_or_else(|| unauthorized("missing Authorization header"))?;
            let secret = header
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| unauthorized("Authorization must be 'Bearer <token>'"))?;
            let token = state
                .tokens
                .find_live(&state.read, secret)
                .await?
                .ok_or_else(|| unauthorized("unknown or revoked token"))?;
            let role =
                Role::parse(&token.role).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
            Ok(Caller {
                token_id: token.id,
                name: token.name,
                senior: token.senior || role == Role::Admin,
                role,
            })
        })
    }
}
