//! What every route shares: rate limits, deadlines on request bodies, security headers, and
//! the error body for unknown routes and methods.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use axum::http::{HeaderValue, StatusCode};
use hyper::body::{Body as _, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use catalyst_core::Error;

use crate::error::ApiError;
use crate::limits::Limiters;

/// The outermost layer: per-IP rate limits, the body's idle deadline, then security headers
/// on every response (the API serves JSON, never pages to frame or sniff; HSTS when served
/// behind TLS). One hand-written service instead of three `from_fn` middlewares: it costs one
/// boxed future per request (and, for requests with a body, the watched body).
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub limiters: Limiters,
    pub hsts: bool,
    pub body: BodyTimeouts,
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
        let (req, watch) = self.edge.body.watch(req);
        // The ready service answers this request; a fresh clone waits for the next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            // Whatever a handler made of a body that stopped coming (an upload reports an
            // interruption), the client is told it was too slow.
            if let Some(watch) = watch
                && watch.stalled()
                && !res.status().is_success()
            {
                res = watch.stalled_error().into_response();
            }
            Ok(harden(res, hsts))
        })
    }
}

/// Deadlines of request bodies (see [`crate::HttpConfig`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeouts {
    /// Longest wait for the next body bytes.
    pub idle: Duration,
    /// Longest a JSON body may take in all ([`crate::extract::Body`] applies it).
    pub json: Duration,
}

impl BodyTimeouts {
    /// `req` with its body under the idle deadline, and what the body reports to; requests
    /// without a body are left as they are.
    fn watch(self, req: Request) -> (Request, Option<Arc<BodyWatch>>) {
        if req.body().is_end_stream() {
            return (req, None);
        }
        let watch = Arc::new(BodyWatch { stalled: AtomicBool::new(false), timeouts: self });
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(watch.clone());
        let body = IdleBody { inner: body, watch: watch.clone(), timer: None, waiting: false, ended: false };
        (Request::from_parts(parts, Body::new(body)), Some(watch))
    }
}

/// Shared by a request's body and what reads it (a request extension).
#[derive(Debug)]
pub(crate) struct BodyWatch {
    stalled: AtomicBool,
    timeouts: BodyTimeouts,
}

impl BodyWatch {
    /// The body failed because no bytes came for the idle deadline.
    pub(crate) fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// The deadline of a whole JSON body.
    pub(crate) fn json_timeout(&self) -> Duration {
        self.timeouts.json
    }

    /// 408 for a stalled body.
    pub(crate) fn stalled_error(&self) -> ApiError {
        let message = format!("the request body sent nothing for {:?}", self.timeouts.idle);
        ApiError::from(Error::timeout(message)).with_status(StatusCode::REQUEST_TIMEOUT)
    }
}

/// The error a stalled body yields to its reader.
#[derive(Debug)]
struct BodyStalled(Duration);

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no request body bytes for {:?}", self.0)
    }
}

impl std::error::Error for BodyStalled {}

/// A request body that fails once its reader has waited [`BodyTimeouts::idle`] for bytes.
/// Only waiting counts (the time between a poll that found nothing and the next bytes), not
/// the time the reader spends elsewhere, so a fast upload of any size is never cut.
#[derive(Debug)]
struct IdleBody {
    inner: Body,
    watch: Arc<BodyWatch>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The last poll found nothing: the timer runs.
    waiting: bool,
    ended: bool,
}

impl hyper::body::Body for IdleBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.watch.timeouts.idle;
                if !this.waiting {
                    this.waiting = true;
                    let deadline = tokio::time::Instant::now() + idle;
                    match &mut this.timer {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                if let Some(timer) = &mut this.timer
                    && timer.as_mut().poll(cx).is_ready()
                {
                    this.ended = true;
                    this.watch.stalled.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(idle)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended { SizeHint::with_exact(0) } else { self.inner.size_hint() }
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

/// A known path with a method it does not have (axum adds `Allow`). The body has the usual
/// shape; its code, `method_not_allowed`, is not an [`ErrorKind`]: no facade call fails so.
pub(crate) async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": {
        "code": "method_not_allowed",
        "message": "this route does not have this method (see the Allow header)",
    }});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
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
