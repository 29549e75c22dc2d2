//! The browser UI: built from `web/` by build.rs and embedded in the binary, served on the
//! same port as the API (same origin: no CORS). Requests that no gRPC route matches land here:
//! asset paths get their file, other GETs get the app's index.html (its hash router takes
//! over), everything else 404.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// What the browser may load: only this origin's scripts, styles and API.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(url, _, _)| *url == path)
        .map(|(_, mime, bytes)| (*mime, *bytes))
}

/// The fallback handler of the router.
pub async fn serve(request: Request<Body>) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let path = request.uri().path();
    let found = asset(path).or_else(|| {
        // Anything that is not a file (no extension) is a page of the app.
        let last = path.rsplit('/').next().unwrap_or_default();
        (!last.contains('.'))
            .then(|| asset("/index.html"))
            .flatten()
    });
    let Some((mime, bytes)) = found else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // No hashed file names: the browser revalidates, so an upgraded server is picked up.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
