//! Rate limits per client IP (GCRA from `governor`): a global quota, a strict one for
//! credential endpoints, a generous one for health checks. Over the limit: 429 with
//! `Retry-After` and the usual error body. Requests without a known peer address (the router
//! used in-process) are not limited.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use catalyst_core::Error;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Requests per minute per client IP.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Every route not listed below (spec: 200/min).
    pub per_minute: u32,
    /// Login, registration, refresh and agent enrollment (spec: 10/min).
    pub auth_per_minute: u32,
    /// `GET /api/health` (spec: 1000/min).
    pub health_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { per_minute: 200, auth_per_minute: 10, health_per_minute: 1000 }
    }
}

impl RateLimits {
    /// No limits (for embedders that limit in front of Catalyst, and for benchmarks).
    pub fn unlimited() -> Self {
        Self { per_minute: u32::MAX, auth_per_minute: u32::MAX, health_per_minute: u32::MAX }
    }
}

/// The three limiters.
#[derive(Debug, Clone)]
pub struct Limiters {
    global: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    auth: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    health: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn limiter(per_minute: u32) -> Arc<DefaultKeyedRateLimiter<IpAddr>> {
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_minute(n)))
}

impl Limiters {
    /// Limiters for `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            global: limiter(limits.per_minute),
            auth: limiter(limits.auth_per_minute),
            health: limiter(limits.health_per_minute),
        }
    }

    /// Forget idle clients (call now and then so the key store stays small).
    pub fn shrink(&self) {
        for l in [&self.global, &self.auth, &self.health] {
            l.retain_recent();
        }
    }
}

fn is_auth(path: &str) -> bool {
    matches!(path, "/api/auth/login" | "/api/auth/register" | "/api/auth/refresh" | "/api/agent/enroll")
}

impl Limiters {
    /// `Some(429 response)` when the request's client is over its quota.
    pub(crate) fn check(&self, req: &Request) -> Option<Response> {
        let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
        let path = req.uri().path();
        let limiter = if path == "/api/health" {
            &self.health
        } else if is_auth(path) {
            &self.auth
        } else {
            &self.global
        };
        let not_until = limiter.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let error = Error::rate_limited("too many requests; slow down").with_retry_after(wait);
        Some(ApiError::from(error).into_response())
    }
}
