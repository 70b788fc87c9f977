//! One error type for the whole API, with a table of stable codes.
//!
//! Every non-2xx answer has the body
//! `{"error": {"code": "<stable_snake_case>", "message": "<sentence>"}}`.
//! Codes are part of the contract: renaming one breaks `tests/api_errors.rs`.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

/// Stable, machine-readable error codes. Adding a variant forces a decision in
/// `status()` and `as_str()`: no catch-all arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    InvalidRequest,
    Conflict,
    NoModel,
    NotEnoughLabels,
    PayloadTooLarge,
    UnsupportedMediaType,
    MethodNotAllowed,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::InvalidRequest,
        ErrorCode::Conflict,
        ErrorCode::NoModel,
        ErrorCode::NotEnoughLabels,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NoModel => "no_model",
            ErrorCode::NotEnoughLabels => "not_enough_labels",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::NoModel => StatusCode::CONFLICT,
            ErrorCode::NotEnoughLabels => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error that becomes an HTTP answer. Client errors carry a message meant
/// for the caller; `Internal` keeps its cause for the log only.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    cause: Option<anyhow::Error>,
}

/// Longest message an answer carries (and the log repeats): a message that
/// echoes a caller's value is cut, so a 15 MiB label cannot come back in
/// the answer or fill the log.
pub const MAX_MESSAGE_CHARS: usize = 1_000;
/// Longest caller value a message quotes.
pub const MAX_ECHO_CHARS: usize = 200;

/// A caller's value as an error message quotes it: debug-quoted, at most
/// [`MAX_ECHO_CHARS`] characters of it.
pub fn echo(value: &str) -> String {
    let n = value.chars().count();
    if n <= MAX_ECHO_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_ECHO_CHARS).collect();
        format!("{head:?}… ({n} characters)")
    }
}

fn capped(mut m: String) -> String {
    if let Some((cut, _)) = m.char_indices().nth(MAX_MESSAGE_CHARS) {
        m.truncate(cut);
        m.push_str("… (cut)");
    }
    m
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: capped(message.into()),
            cause: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        ApiError {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            cause: Some(cause.into()),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::internal(e)
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(e: sea_orm::TransactionError<ApiError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => ApiError::internal(db),
            sea_orm::TransactionError::Transaction(api) => api,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}
#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }
    fn error_response(&self) -> HttpResponse {
        // Each error is logged once, here, where it becomes a response.
        match &self.cause {
            Some(cause) => tracing::error!(error = ?cause, "internal error"),
            None if self.code.status().is_server_error() => {
                tracing::error!(message = %self.message, "server error")
            }
            None => {
                tracing::debug!(code = self.code.as_str(), message = %self.message, "client error")
            }
        }
        HttpResponse::build(self.status_code()).json(Body {
            error: Inner {
                code: self.code.as_str(),
                message: &self.message,
            },
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ErrorCode {
    /// The code for an error answer produced outside our handlers (by the
    /// framework: unknown method, body over the limit …).
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status.as_u16() {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            415 => ErrorCode::UnsupportedMediaType,
            s if s >= 500 => ErrorCode::Internal,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

/// Middleware: any error answer that is not already our JSON error body
/// (the framework's own 404/405/413 …) is rewritten into it, so clients
/// always get `{"error": {"code", "message"}}`.
pub async fn normalize_errors(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let is_json = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(res.map_into_boxed_body());
    }
    let code = ErrorCode::for_status(status);
    let message = status
        .canonical_reason()
        .unwrap_or("request failed")
        .to_string();
    let (req, _) = res.into_parts();
    let body = HttpResponse::build(status).json(Body {
        error: Inner {
            code: code.as_str(),
            message: &message,
        },
    });
    Ok(actix_web::dev::ServiceResponse::new(req, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are a contract: this list changes only on purpose.
    #[test]
    fn code_table_snapshot() {
        let table: Vec<(&str, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str(), c.status().as_u16()))
            .collect();
        assert_eq!(
            table,
            vec![
                ("unauthorized", 401),
                ("forbidden", 403),
                ("not_found", 404),
                ("invalid_request", 400),
                ("conflict", 409),
                ("no_model", 409),
                ("not_enough_labels", 409),
                ("payload_too_large", 413),
                ("unsupported_media_type", 415),
                ("method_not_allowed", 405),
                ("internal", 500),
            ]
        );
    }
}
