//! Credentials: argon2id password hashes, HS256 access tokens with audience and expiry,
//! opaque refresh and node tokens of which only SHA-256 hashes are stored.

use std::fmt;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use catalyst_core::id::{SessionId, UserId};
use catalyst_core::model::Timestamp;
use catalyst_core::{Error, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sha2::Digest;

/// The audience of access tokens for the API; tokens for other purposes are refused.
pub const API_AUDIENCE: &str = "catalyst-api";
const ISSUER: &str = "catalyst";

/// Token settings.
#[derive(Clone)]
pub struct AuthConfig {
    /// HMAC key for access tokens, at least 32 bytes.
    pub jwt_secret: Vec<u8>,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of a login (refresh token family).
    pub refresh_ttl: Duration,
    /// Lifetime of node deployment tokens.
    pub deployment_ttl: Duration,
    /// Allow anyone to register (otherwise only operators create users).
    pub open_registration: bool,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &"<redacted>")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("deployment_ttl", &self.deployment_ttl)
            .field("open_registration", &self.open_registration)
            .finish()
    }
}

impl AuthConfig {
    /// Defaults with the given secret: 15 min access tokens, 30 day logins, 1 h deployment tokens.
    pub fn with_secret(secret: impl Into<Vec<u8>>) -> Result<Self> {
        let jwt_secret = secret.into();
        if jwt_secret.len() < 32 {
            return Err(Error::invalid("the JWT secret must be at least 32 bytes"));
        }
        Ok(Self {
            jwt_secret,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            deployment_ttl: Duration::from_secs(3600),
            open_registration: true,
        })
    }
}

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// The login session; revoking it invalidates the token.
    pub sid: SessionId,
    /// Audience: `catalyst-api` for API access tokens, `catalyst-sftp` for SFTP ones.
    pub aud: String,
    /// Issuer: always `catalyst`.
    pub iss: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
}

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens").field("access_ttl", &self.access_ttl).finish_non_exhaustive()
    }
}

impl Tokens {
    /// Keys from the config.
    pub fn new(config: &AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[API_AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(&config.jwt_secret),
            decoding: DecodingKey::from_secret(&config.jwt_secret),
            validation,
            access_ttl: config.access_ttl,
        }
    }

    /// A signed access token for `user` in `session`, valid from `now`.
    pub fn issue(&self, user: UserId, session: SessionId, now: Timestamp) -> Result<String> {
        let claims = Claims {
            sub: user,
            sid: session,
            aud: API_AUDIENCE.into(),
            iss: ISSUER.into(),
            iat: now.timestamp(),
            exp: now.timestamp() + i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX / 2),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal("cannot sign token", e))
    }

    /// Verify signature, audience, issuer and expiry against the wall clock.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::unauthenticated("the token has expired"),
                _ => Error::unauthenticated("the token is invalid"),
            }
        })
    }

    /// Is a token with this expiry (seconds since the epoch) still valid by the wall clock,
    /// with the same leeway as [`Tokens::verify`]?
    pub fn unexpired(&self, exp: i64) -> bool {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        i64::try_from(now).is_ok_and(|now| exp + i64::try_from(self.validation.leeway).unwrap_or(0) > now)
    }

    /// Access token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }
}

/// Hash a password with argon2id on a blocking thread (it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String> {
    let _permit = hashing_slot().await?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::internal("cannot hash password", std::io::Error::other(e.to_string())))
    })
    .await
    .map_err(|e| Error::internal("hashing task failed", e))?
}

/// Check a password against a stored hash on a blocking thread.
pub async fn verify_password(password: String, hash: String) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(_permit) = hashing_slot().await else { return false };
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
        .await
        .unwrap_or(false)
}

/// Argon2 runs at most this many at once in the process (each takes ~19 MiB and a core for a
/// few dozen ms), so a burst of logins queues here instead of filling tokio's blocking pool,
/// which file operations and every other tenant need.
const MAX_CONCURRENT_HASHES: usize = 4;
/// How long a login waits for a hashing slot before it is told to come back.
const HASHING_WAIT: Duration = Duration::from_secs(10);
/// Longer passwords are refused before any hashing.
const MAX_PASSWORD_BYTES: usize = 1024;

static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_HASHES);

async fn hashing_slot() -> Result<tokio::sync::SemaphorePermit<'static>> {
    slot_within(HASHING_WAIT).await
}

async fn slot_within(wait: Duration) -> Result<tokio::sync::SemaphorePermit<'static>> {
    match tokio::time::timeout(wait, HASHING.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(Error::unavailable("too many sign-ins at once; try again in a moment")
            .with_retry_after(Duration::from_secs(1))),
    }
}

/// 32 random bytes, base64url without padding.
pub fn random_secret() -> String {
    let mut buf = [0u8; 32];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Hex SHA-256, for storing tokens we only need to recognise.
pub fn sha256_hex(data: &str) -> String {
    hex::encode(sha2::Sha256::digest(data.as_bytes()))
}

/// Compare two hashes without leaking where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig::with_secret(vec![7u8; 32]).expect("secret")
    }

    /// With every hashing slot taken, a sign-in waits for one instead of becoming one more
    /// thread on the blocking pool, and gives up after a bounded wait.
    #[tokio::test]
    async fn hashing_is_bounded_and_waits_end() {
        let held = HASHING.acquire_many(MAX_CONCURRENT_HASHES as u32).await.expect("every slot");
        let waiting = tokio::spawn(hash_password("password-123".into()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "hashed without a slot");
        let err = slot_within(Duration::from_millis(20)).await.expect_err("no slot");
        assert_eq!(err.kind(), catalyst_core::ErrorKind::Unavailable);
        assert!(err.retry_after().is_some());
        drop(held);
        assert!(waiting.await.expect("join").is_ok(), "hashed once a slot was free");
        assert!(!verify_password("x".repeat(MAX_PASSWORD_BYTES + 1), String::new()).await);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(AuthConfig::with_secret(b"short".to_vec()).is_err());
        assert!(!format!("{:?}", config()).contains('7'), "secret must not be printed");
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering_audience_and_expiry() {
        let tokens = Tokens::new(&config());
        let (user, sid) = (UserId::new(), SessionId::new());
        let now = chrono::Utc::now();
        let t = tokens.issue(user, sid, now).expect("issue");
        let claims = tokens.verify(&t).expect("verify");
        assert_eq!((claims.sub, claims.sid), (user, sid));

        let expired = tokens.issue(user, sid, now - chrono::Duration::hours(2)).expect("issue");
        assert_eq!(
            tokens.verify(&expired).map_err(|e| e.message().to_string()).err().as_deref(),
            Some("the token has expired")
        );

        let mut tampered = t.clone();
        tampered.pop();
        tampered.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(tokens.verify(&tampered).is_err());

        // Same key, other audience: refused.
        let other = Claims {
            sub: user,
            sid,
            aud: "catalyst-sftp".into(),
            iss: ISSUER.into(),
            iat: now.timestamp(),
            exp: now.timestamp() + 60,
        };
        let foreign =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &other, &EncodingKey::from_secret(&[7u8; 32]))
                .expect("enc");
        assert!(tokens.verify(&foreign).is_err());

        let other_key = Tokens::new(&AuthConfig::with_secret(vec![8u8; 32]).expect("secret"));
        assert!(other_key.verify(&t).is_err());
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), h.clone()).await);
        assert!(!verify_password("wrong horse".into(), h.clone()).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn hashes_compare() {
        assert!(constant_time_eq(&sha256_hex("a"), &sha256_hex("a")));
        assert!(!constant_time_eq(&sha256_hex("a"), &sha256_hex("b")));
        assert_ne!(random_secret(), random_secret());
    }
}
