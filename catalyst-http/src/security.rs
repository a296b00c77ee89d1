//! Response hardening shared by every route.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use catalyst_core::Error;

use crate::error::ApiError;
use crate::limits::Limiters;

/// The outermost layer: per-IP rate limits, then security headers on every response (the API
/// serves JSON, never pages to frame or sniff; HSTS when served behind TLS). One hand-written
/// service instead of two `from_fn` middlewares: it costs one boxed future per request.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub limiters: Limiters,
    pub hsts: bool,
}

impl<S> tower::Layer<S> for Edge {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgeService { edge: self.clone(), inner }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct EdgeService<S> {
    edge: Edge,
    inner: S,
}

impl<S> tower::Service<Request> for EdgeService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let hsts = self.edge.hsts;
        if let Some(limited) = self.edge.limiters.check(&req) {
            return Box::pin(async move { Ok(harden(limited, hsts)) });
        }
        // The ready service answers this request; a fresh clone waits for the next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move { Ok(harden(inner.call(req).await?, hsts)) })
    }
}

fn harden(mut res: Response, hsts: bool) -> Response {
    let h = res.headers_mut();
    if hsts {
        h.insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    h.entry(CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// Unknown API paths answer in the same error format.
pub(crate) async fn not_found() -> Response {
    ApiError::from(Error::not_found("route")).into_response()
}

/// CORS for the configured origins (`*` allows any); `None` when no origin is configured, so
/// browsers keep their same-origin rule and requests skip the layer.
pub(crate) fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let methods =
        [axum::http::Method::GET, axum::http::Method::POST, axum::http::Method::PUT, axum::http::Method::DELETE];
    let headers = [
        axum::http::header::AUTHORIZATION,
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderName::from_static("x-api-key"),
    ];
    let layer =
        CorsLayer::new().allow_methods(methods).allow_headers(headers).max_age(std::time::Duration::from_secs(600));
    Some(if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    })
}
