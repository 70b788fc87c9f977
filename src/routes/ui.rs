//! The browser UI: files from `static/`, embedded in the binary so
//! `loupe serve` alone is enough.
use actix_web::{http::header, web, HttpRequest, HttpResponse};

#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Assets;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(asset))
        .route("/{path:.*}", web::get().to(asset));
}

async fn asset(req: HttpRequest) -> HttpResponse {
    let path = req.match_info().get("path").unwrap_or("");
    let path = if path.is_empty() { "index.html" } else { path };
    match Assets::get(path) {
        Some(f) => HttpResponse::Ok()
            .content_type(f.metadata.mimetype())
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(f.data.into_owned()),
        None => HttpResponse::NotFound().json(serde_json::json!({
            "error": {"code": "not_found", "message": format!("{path} not found")}
        })),
    }
}
