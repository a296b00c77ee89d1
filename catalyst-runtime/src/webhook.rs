//! Outgoing webhooks: generic JSON, Discord or Slack bodies, signed with HMAC-SHA256 over
//! `"<timestamp>.<body>"`, retried with exponential back-off on network errors, 429 and 5xx.
//!
//! SSRF: the address actually connected to is checked, not the name in the URL. Host names are
//! resolved by [`GuardedResolver`], which drops private, loopback, link-local and other
//! non-public addresses before the client connects; IP literals are checked before the first
//! request and at every redirect. An operator can allow private targets explicitly.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use catalyst_core::model::{WebhookDelivery as Delivery, WebhookFormat, WebhookTarget};
use catalyst_core::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the Unix time the body was signed at.
pub const TIMESTAMP_HEADER: &str = "x-catalyst-timestamp";
/// Header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-catalyst-signature";

/// Delivery settings.
#[derive(Debug, Clone, Copy)]
pub struct WebhookPolicy {
    /// Allow private, loopback and link-local targets (off by default).
    pub allow_private: bool,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled each time, capped at a minute.
    pub backoff: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

impl Default for WebhookPolicy {
    fn default() -> Self {
        Self { allow_private: false, attempts: 5, backoff: Duration::from_secs(1), timeout: Duration::from_secs(10) }
    }
}

/// Is `ip` a public unicast address?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

fn check_ip(ip: IpAddr, allow_private: bool) -> Result<()> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(Error::denied(format!("webhook target {ip} is not a public address")))
    }
}

/// Resolves names and keeps only the addresses the policy allows, so the client can only
/// connect to them.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|a| check_ip(a.ip(), allow_private).is_ok()).collect();
            if allowed.is_empty() {
                let e = Error::denied(format!("webhook host {host} resolves to no public address"));
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Sends webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    policy: WebhookPolicy,
}

fn ip_literal(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

impl WebhookSender {
    /// A sender with `policy`.
    pub fn new(policy: WebhookPolicy) -> Result<Self> {
        crate::install_tls_provider();
        let allow_private = policy.allow_private;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            match ip_literal(attempt.url()).map(|ip| check_ip(ip, allow_private)) {
                Some(Err(e)) => attempt.error(e),
                _ => attempt.follow(),
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(redirects)
            .timeout(policy.timeout)
            .user_agent(concat!("catalyst/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal("cannot build the webhook client", e))?;
        Ok(Self { client, policy })
    }

    /// The body for `target`'s format.
    pub fn body(format: WebhookFormat, event: &str, text: &str, data: &serde_json::Value) -> serde_json::Value {
        match format {
            WebhookFormat::Generic => serde_json::json!({"event": event, "text": text, "data": data}),
            WebhookFormat::Discord => serde_json::json!({"content": text}),
            WebhookFormat::Slack => serde_json::json!({"text": text}),
        }
    }

    /// `sha256=<hex>` of `"<timestamp>.<body>"` under `secret`.
    pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Deliver one event, retrying per the policy.
    pub async fn send(&self, target: &WebhookTarget, event: &str, text: &str, data: &serde_json::Value) -> Delivery {
        let mut delivery = Delivery {
            id: catalyst_core::id::DeliveryId::new(),
            alert_id: None,
            url: target.url.clone(),
            event: event.to_string(),
            delivered: false,
            attempts: 0,
            status: None,
            error: None,
            at: chrono::Utc::now(),
        };
        let body = serde_json::to_vec(&Self::body(target.format, event, text, data)).unwrap_or_default();
        match self.check_url(&target.url) {
            Err(e) => delivery.error = Some(e.message().to_string()),
            Ok(url) => {
                let mut wait = self.policy.backoff;
                while delivery.attempts < self.policy.attempts.max(1) {
                    if delivery.attempts > 0 {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(60));
                    }
                    delivery.attempts += 1;
                    let retry = self.attempt(&url, target, &body, &mut delivery).await;
                    if delivery.delivered || !retry {
                        break;
                    }
                }
            }
        }
        delivery.at = chrono::Utc::now();
        delivery
    }

    /// One attempt; returns whether another may help.
    async fn attempt(&self, url: &reqwest::Url, target: &WebhookTarget, body: &[u8], d: &mut Delivery) -> bool {
        let mut req = self.client.post(url.clone()).header("content-type", "application/json").body(body.to_vec());
        if let Some(secret) = &target.secret {
            let ts = chrono::Utc::now().timestamp();
            req = req
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(SIGNATURE_HEADER, Self::signature(secret, ts, body));
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status();
                d.status = Some(status.as_u16());
                d.delivered = status.is_success();
                d.error = (!d.delivered).then(|| format!("the receiver answered {status}"));
                status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            Err(e) => {
                // The whole chain: the resolver's refusal (our own error) sits a few sources down.
                let mut chain = vec![e.to_string()];
                let mut refused = false;
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    chain.push(s.to_string());
                    refused |= s
                        .downcast_ref::<Error>()
                        .is_some_and(|e| e.kind() == catalyst_core::ErrorKind::PermissionDenied);
                    source = s.source();
                }
                // A refused address is final; network trouble may pass.
                let text = chain.join(": ");
                d.error = Some(if refused { format!("refused: {text}") } else { text });
                !refused
            }
        }
    }

    fn check_url(&self, raw: &str) -> Result<reqwest::Url> {
        let url = reqwest::Url::parse(raw).map_err(|e| Error::invalid(format!("webhook URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid("webhook URL: must be http or https"));
        }
        if let Some(ip) = ip_literal(&url) {
            check_ip(ip, self.policy.allow_private)?;
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn signatures_cover_time_and_body() {
        let a = WebhookSender::signature("s3cret", 1_700_000_000, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, WebhookSender::signature("s3cret", 1_700_000_001, b"{}"));
        assert_ne!(a, WebhookSender::signature("s3cret", 1_700_000_000, b"{ }"));
        assert_ne!(a, WebhookSender::signature("other", 1_700_000_000, b"{}"));
    }
}
