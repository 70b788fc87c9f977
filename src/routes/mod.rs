//! HTTP routes: one file per resource, each with `configure`. Handlers are
//! thin: extract, check the caller, parse into domain types, call one
//! function, shape the answer.
mod gold;
mod health;
pub mod items;
mod models;
mod npy;
mod openapi;
mod predict;
mod projects;
mod queue;
mod review_stats;
mod stats;
mod tokens;
mod ui;
pub mod views;

use crate::error::{ApiError, ErrorCode};
use actix_web::{error::JsonPayloadError, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    cfg.service(
        web::scope("/api/v1")
            .configure(tokens::configure)
            .configure(projects::configure)
            .configure(items::configure)
            .configure(gold::configure)
            .configure(queue::configure)
            .configure(models::configure)
            .configure(predict::configure)
            .configure(stats::configure)
            .configure(openapi::configure)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found("route"))
            })),
    );
    ui::configure(cfg);
}

/// Extractor settings: every malformed request becomes our error body.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            let e = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
                }
                JsonPayloadError::ContentType => ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "Content-Type must be application/json",
                ),
                other => ApiError::invalid(format!("invalid JSON body: {other}")),
            };
            e.into()
        })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _| ApiError::invalid(format!("bad path parameter: {err}")).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _| ApiError::invalid(format!("bad query string: {err}")).into())
}

/// The project with this id and its checked settings, or 404.
pub(crate) async fn project_or_404(
    state: &crate::state::AppState,
    id: i64,
) -> Result<(crate::db::projects::Project, crate::domain::ProjectSpec), ApiError> {
    let entry = match state.projects.get(&state.read, id).await {
        Ok(e) => e,
        Err(crate::cache::ProjectError::Db(e)) => return Err(e.into()),
        Err(e) => return Err(ApiError::internal(anyhow::anyhow!(e))),
    };
    let entry = entry.ok_or_else(|| ApiError::not_found("project"))?;
    Ok((entry.0.clone(), entry.1.clone()))
}

/// The feature length new items must have: the project's, or `Some(0)` when
/// it holds items without features (all of a project's items have features
/// or none has: a model that uses them needs them on every item).
pub(crate) async fn feature_len(
    state: &crate::state::AppState,
    p: &crate::db::projects::Project,
) -> Result<Option<usize>, ApiError> {
    if let Some(n) = p.feature_len {
        return Ok(Some(n as usize));
    }
    // Not known yet (or a cached copy from before another replica's first
    // import): ask the database itself.
    let fresh = crate::db::projects::get(&state.db, p.id).await?;
    Ok(match fresh.and_then(|f| f.feature_len) {
        Some(n) => Some(n as usize),
        None if crate::db::projects::counts(&state.db, p.id).await?.items > 0 => Some(0),
        None => None,
    })
}

/// A JSON body that may be absent (empty means all defaults).
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

/// The request body as a blocking [`std::io::Read`] for a parser on the
/// blocking pool, fed by [`stream_body`] while the body arrives.
pub(crate) struct BodyReader {
    rx: tokio::sync::mpsc::UnboundedReceiver<Result<web::Bytes, ()>>,
    piece: web::Bytes,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(piece)) => self.piece = piece,
                Some(Err(())) => {
                    return Err(std::io::Error::other("the body did not arrive whole"))
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece.split_to(n));
        Ok(n)
    }
}

/// Streams the request body into a [`BodyReader`]: the future reads it (413
/// `payload_too_large` past `limit`) and must run while
/// the reader is read. A body that fails to arrive whole ends the reader
/// with an error, never with a short, well-formed end. Nothing waits for
/// the reader: at most `limit` bytes are held, as a whole body would be.
pub(crate) fn stream_body(
    req: &actix_web::HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> (
    impl std::future::Future<Output = Result<(), ApiError>> + '_,
    BodyReader,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let feed = async move {
        let res = each_chunk(req, payload, limit, |chunk| {
            // A reader that stopped has its own error to tell.
            let _ = tx.send(Ok(web::Bytes::copy_from_slice(chunk)));
            Ok(())
        })
        .await;
        if res.is_err() {
            let _ = tx.send(Err(()));
        }
        res
    };
    (
        feed,
        BodyReader {
            rx,
            piece: web::Bytes::new(),
        },
    )
}

/// Hands each chunk of the request body to `f` as it arrives; 413
/// `payload_too_large` past `limit` bytes (at once when `Content-Length`
/// claims more).
pub(crate) async fn each_chunk(
    req: &actix_web::HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    mut f: impl FnMut(&[u8]) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    use futures_util::StreamExt;
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        )
    };
    if content_length(req).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut received = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading the body: {e}")))?;
        received += chunk.len();
        if received > limit {
            return Err(too_large());
        }
        f(&chunk)?;
    }
    Ok(())
}

/// A large answer handed to actix a piece at a time, its length known (so
/// it is sent with `Content-Length`): actix copies each piece into its
/// small, reused write buffer and writes it out, where one whole body
/// would grow that buffer to the body's size for every request, then drop
/// it.
pub(crate) struct Pieces(web::Bytes);

impl Pieces {
    const SIZE: usize = 64 << 10;
}

impl From<Vec<u8>> for Pieces {
    fn from(body: Vec<u8>) -> Pieces {
        Pieces(body.into())
    }
}

impl actix_web::body::MessageBody for Pieces {
    type Error = std::convert::Infallible;

    fn size(&self) -> actix_web::body::BodySize {
        actix_web::body::BodySize::Sized(self.0.len() as u64)
    }

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<web::Bytes, Self::Error>>> {
        if self.0.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.0.len().min(Pieces::SIZE);
        std::task::Poll::Ready(Some(Ok(self.0.split_to(n))))
    }
}

fn content_length(req: &actix_web::HttpRequest) -> Option<usize> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
