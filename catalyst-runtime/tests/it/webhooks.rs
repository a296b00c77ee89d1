//! Outgoing webhooks against a real HTTP receiver on loopback: signed bodies, retries on 5xx
//! (not on 4xx), and SSRF refusals for loopback targets unless an operator allows them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalyst_runtime::webhook::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookFormat, WebhookPolicy, WebhookSender, WebhookTarget,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A received request: lower-cased headers and the body.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An HTTP receiver answering with `statuses` in turn (the last one repeats).
pub async fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let mut reader = BufReader::new(stream);
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("request line");
            loop {
                line.clear();
                reader.read_line(&mut line).await.expect("header");
                let Some((k, v)) = line.trim_end().split_once(':') else { break };
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            let len =
                headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).await.expect("body");
            let n = {
                let mut log = log.lock().expect("log");
                log.push(Received { headers, body });
                log.len()
            };
            let status = statuses[(n - 1).min(statuses.len() - 1)];
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = reader.get_mut().write_all(answer.as_bytes()).await;
        }
    });
    (url, seen)
}

fn quick(allow_private: bool) -> WebhookPolicy {
    WebhookPolicy { allow_private, attempts: 3, backoff: Duration::from_millis(10), timeout: Duration::from_secs(5) }
}

#[tokio::test]
async fn signed_delivery_is_retried_after_a_server_error() {
    let (url, seen) = receiver(vec![500, 200]).await;
    let sender = WebhookSender::new(quick(true)).expect("sender");
    let target = WebhookTarget { url, format: WebhookFormat::Generic, secret: Some("s3cret".into()) };
    let data = json!({"server_id": "abc", "cpu": 97.5});
    let d = sender.send(&target, "alert.raised", "CPU above 90% for 5 minutes", &data).await;
    assert!(d.delivered, "{d:?}");
    assert_eq!((d.attempts, d.status), (2, Some(200)));

    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 2, "one retry");
    for r in &seen {
        let ts: i64 = r.header(TIMESTAMP_HEADER).expect("timestamp").parse().expect("number");
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        assert_eq!(r.header(SIGNATURE_HEADER), Some(WebhookSender::signature("s3cret", ts, &r.body).as_str()));
        assert_ne!(r.header(SIGNATURE_HEADER), Some(WebhookSender::signature("wrong", ts, &r.body).as_str()));
        let body: Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(body, json!({"event": "alert.raised", "text": "CPU above 90% for 5 minutes", "data": data}));
    }
}

#[tokio::test]
async fn client_errors_are_not_retried_and_bodies_follow_the_format() {
    let (url, seen) = receiver(vec![400]).await;
    let sender = WebhookSender::new(quick(true)).expect("sender");
    let target = WebhookTarget { url, format: WebhookFormat::Discord, secret: None };
    let d = sender.send(&target, "alert.raised", "node n1 offline", &json!({})).await;
    assert!(!d.delivered);
    assert_eq!((d.attempts, d.status), (1, Some(400)));
    let seen = seen.lock().expect("log").clone();
    assert_eq!(serde_json::from_slice::<Value>(&seen[0].body).expect("json"), json!({"content": "node n1 offline"}));
    assert!(seen[0].header(SIGNATURE_HEADER).is_none(), "unsigned without a secret");
    let slack = WebhookSender::body(WebhookFormat::Slack, "e", "hello", &json!({}));
    assert_eq!(slack, json!({"text": "hello"}));
}

#[tokio::test]
async fn loopback_targets_are_refused_unless_allowed() {
    let (url, seen) = receiver(vec![200]).await;
    let strict = WebhookSender::new(quick(false)).expect("sender");
    // An IP literal is refused before any request.
    let literal = WebhookTarget { url: url.clone(), format: WebhookFormat::Generic, secret: None };
    let d = strict.send(&literal, "e", "t", &json!({})).await;
    assert!(!d.delivered && d.attempts == 0, "{d:?}");
    assert!(d.error.as_deref().is_some_and(|e| e.contains("not a public address")), "{d:?}");
    // A name that resolves to loopback is refused at connect time, and not retried.
    let named =
        WebhookTarget { url: url.replace("127.0.0.1", "localhost"), format: WebhookFormat::Generic, secret: None };
    let d = strict.send(&named, "e", "t", &json!({})).await;
    assert!(!d.delivered, "{d:?}");
    assert_eq!(d.attempts, 1, "{d:?}");
    assert!(d.error.as_deref().is_some_and(|e| e.contains("refused")), "{d:?}");
    let bad = WebhookTarget { url: "file:///etc/passwd".into(), format: WebhookFormat::Generic, secret: None };
    assert!(strict.send(&bad, "e", "t", &json!({})).await.error.is_some_and(|e| e.contains("http")));
    assert!(seen.lock().expect("log").is_empty(), "nothing reached the receiver");

    // An operator may allow private targets.
    let open = WebhookSender::new(quick(true)).expect("sender");
    assert!(open.send(&literal, "e", "t", &json!({})).await.delivered);
}
