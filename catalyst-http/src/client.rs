//! A typed client of a running catalyst-server's REST API, implementing
//! [`CatalystApi`](catalyst_runtime::api::CatalystApi) — the remote mode of the SDKs. Errors come
//! back with the server's code (`{"error":{"code","message"}}` → the same [`ErrorKind`]), so a
//! caller cannot tell the remote mode from the embedded one by its errors.

use async_trait::async_trait;
use catalyst_core::egg::EggFormat;
use catalyst_core::id::{BackupId, NodeId, ServerId, TemplateId};
use catalyst_core::model::{
    Backup, Location, LogQuery, NewAllocations, Node, NodeAllocation, Page, Paged, Server, ServerLog, Template, User,
};
use catalyst_core::{Error, ErrorKind, Result};
use catalyst_runtime::api::{CatalystApi, Subscription};
use catalyst_runtime::control::{
    AllocationPatch, AllocationsAdded, LoginInput, LoginOutput, Me, NewLocation, NewNode, NewServer, NewTemplate,
    NewUser, ServerPatch,
};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

mod feed;

/// A catalyst-server, acting with one credential (an access token or an API key).
#[derive(Clone)]
pub struct Client {
    base: String,
    credential: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    code: ErrorKind,
    message: String,
}

fn kind_of(status: reqwest::StatusCode) -> ErrorKind {
    match status.as_u16() {
        400 | 415 | 422 => ErrorKind::InvalidInput,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited,
        503 => ErrorKind::Unavailable,
        504 => ErrorKind::Timeout,
        413 => ErrorKind::QuotaExceeded,
        _ => ErrorKind::Internal,
    }
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:3000`) sending
    /// `credential` — an access token or an API key — as a bearer token.
    pub fn new(base_url: &str, credential: &str) -> Result<Self> {
        catalyst_runtime::install_tls_provider();
        let url = url::Url::parse(base_url).map_err(|e| Error::invalid(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid("url: must be http:// or https://"));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Error::internal("cannot build an HTTP client", e))?;
        Ok(Self { base: base_url.trim_end_matches('/').to_string(), credential: credential.to_string(), http })
    }

    /// Log in with an e-mail address and a password; the client then acts with the access token.
    pub async fn login(base_url: &str, email: &str, password: &str) -> Result<Self> {
        let anonymous = Self::new(base_url, "")?;
        let input = LoginInput { email: email.into(), password: password.into() };
        let out: LoginOutput = anonymous.call(Method::POST, "/api/auth/login", Some(&input)).await?;
        Self::new(base_url, &out.access_token)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<reqwest::Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !self.credential.is_empty() {
            request = request.bearer_auth(&self.credential);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::finish(request).await
    }

    /// Send `request`; a non-2xx answer becomes the error its body describes.
    async fn finish(request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.map_err(|e| Error::unavailable(format!("catalyst-server: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => Error::new(b.error.code, b.error.message),
            Err(_) => Error::new(kind_of(status), format!("catalyst-server answered {status}")),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<T> {
        let response = self.send(method, path, body).await?;
        response.json().await.map_err(|e| Error::unexpected(format!("an unexpected answer: {e}")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &(impl Serialize + Sync)) -> Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }
}

fn paged(path: &str, page: Page) -> String {
    format!("{path}?offset={}&limit={}", page.offset, page.limit)
}

#[async_trait]
impl CatalystApi for Client {
    async fn me(&self) -> Result<Me> {
        self.get("/api/auth/me").await
    }
    async fn create_user(&self, input: NewUser) -> Result<User> {
        self.post("/api/admin/users", &input).await
    }
    async fn list_locations(&self) -> Result<Vec<Location>> {
        self.get("/api/locations").await
    }
    async fn create_location(&self, input: NewLocation) -> Result<Location> {
        self.post("/api/locations", &input).await
    }
    async fn list_nodes(&self, page: Page) -> Result<Paged<Node>> {
        self.get(&paged("/api/nodes", page)).await
    }
    async fn create_node(&self, input: NewNode) -> Result<Node> {
        self.post("/api/nodes", &input).await
    }
    async fn get_node(&self, id: NodeId) -> Result<Node> {
        self.get(&format!("/api/nodes/{id}")).await
    }
    async fn add_allocations(&self, node: NodeId, input: NewAllocations) -> Result<u64> {
        let added: AllocationsAdded = self.post(&format!("/api/nodes/{node}/allocations"), &input).await?;
        Ok(added.added)
    }
    async fn list_allocations(&self, node: NodeId, page: Page) -> Result<Paged<NodeAllocation>> {
        self.get(&paged(&format!("/api/nodes/{node}/allocations"), page)).await
    }
    async fn update_allocation(&self, node: NodeId, number: u64, patch: AllocationPatch) -> Result<NodeAllocation> {
        self.call(Method::PUT, &format!("/api/nodes/{node}/allocations/{number}"), Some(&patch)).await
    }
    async fn delete_allocation(&self, node: NodeId, number: u64) -> Result<()> {
        let path = format!("/api/nodes/{node}/allocations/{number}");
        self.send(Method::DELETE, &path, None::<&()>).await.map(|_| ())
    }
    async fn create_template(&self, input: NewTemplate) -> Result<Template> {
        self.post("/api/templates", &input).await
    }
    async fn list_templates(&self, page: Page) -> Result<Paged<Template>> {
        self.get(&paged("/api/templates", page)).await
    }
    async fn get_template(&self, id: TemplateId) -> Result<Template> {
        self.get(&format!("/api/templates/{id}")).await
    }
    async fn import_template(&self, egg: Vec<u8>) -> Result<Template> {
        let request = self.http.post(format!("{}/api/templates/import", self.base)).bearer_auth(&self.credential);
        let response = Self::finish(request.header("content-type", "application/octet-stream").body(egg)).await?;
        response.json().await.map_err(|e| Error::unexpected(format!("an unexpected answer: {e}")))
    }
    async fn export_template(&self, id: TemplateId, format: EggFormat) -> Result<String> {
        let format = serde_json::to_value(format).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let path = format!("{}/api/templates/{id}/export?format={format}", self.base);
        let response = Self::finish(self.http.get(path).bearer_auth(&self.credential)).await?;
        response.text().await.map_err(|e| Error::unexpected(format!("an unexpected answer: {e}")))
    }
    async fn create_server(&self, input: NewServer) -> Result<Server> {
        self.post("/api/servers", &input).await
    }
    async fn get_server(&self, id: ServerId) -> Result<Server> {
        self.get(&format!("/api/servers/{id}")).await
    }
    async fn list_servers(&self, page: Page) -> Result<Paged<Server>> {
        self.get(&paged("/api/servers", page)).await
    }
    async fn update_server(&self, id: ServerId, patch: ServerPatch) -> Result<Server> {
        self.call(Method::PUT, &format!("/api/servers/{id}"), Some(&patch)).await
    }
    async fn delete_server(&self, id: ServerId) -> Result<()> {
        self.send(Method::DELETE, &format!("/api/servers/{id}"), None::<&()>).await.map(|_| ())
    }
    async fn start_server(&self, id: ServerId) -> Result<Server> {
        self.post(&format!("/api/servers/{id}/start"), &json!({})).await
    }
    async fn stop_server(&self, id: ServerId) -> Result<Server> {
        self.post(&format!("/api/servers/{id}/stop"), &json!({})).await
    }
    async fn restart_server(&self, id: ServerId) -> Result<Server> {
        self.post(&format!("/api/servers/{id}/restart"), &json!({})).await
    }
    async fn kill_server(&self, id: ServerId) -> Result<Server> {
        self.post(&format!("/api/servers/{id}/kill"), &json!({})).await
    }
    async fn send_command(&self, id: ServerId, line: &str) -> Result<()> {
        let body = json!({ "command": line });
        self.send(Method::POST, &format!("/api/servers/{id}/command"), Some(&body)).await.map(|_| ())
    }
    async fn suspend_server(&self, id: ServerId) -> Result<Server> {
        self.post(&format!("/api/servers/{id}/suspend"), &json!({})).await
    }
    async fn unsuspend_server(&self, id: ServerId) -> Result<Server> {
        self.post(&format!("/api/servers/{id}/unsuspend"), &json!({})).await
    }
    async fn server_logs(&self, id: ServerId, query: LogQuery) -> Result<Vec<ServerLog>> {
        let mut url = url::Url::parse(&format!("{}/api/servers/{id}/logs", self.base))
            .map_err(|e| Error::invalid(format!("url: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = query.stream {
                q.append_pair("stream", s.as_str());
            }
            if let Some(b) = query.before {
                q.append_pair("before", &b.to_string());
            }
            if let Some(a) = query.after {
                q.append_pair("after", &a.to_string());
            }
            if let Some(l) = query.limit {
                q.append_pair("limit", &l.to_string());
            }
        }
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        self.get(&path).await
    }
    async fn create_backup(&self, id: ServerId, name: Option<String>) -> Result<Backup> {
        self.post(&format!("/api/servers/{id}/backups"), &json!({ "name": name })).await
    }
    async fn list_backups(&self, id: ServerId) -> Result<Vec<Backup>> {
        self.get(&format!("/api/servers/{id}/backups")).await
    }
    async fn restore_backup(&self, id: ServerId, backup: BackupId) -> Result<Backup> {
        self.post(&format!("/api/servers/{id}/backups/{backup}/restore"), &json!({})).await
    }
    async fn delete_backup(&self, id: ServerId, backup: BackupId) -> Result<()> {
        self.send(Method::DELETE, &format!("/api/servers/{id}/backups/{backup}"), None::<&()>).await.map(|_| ())
    }
    async fn events(&self, id: ServerId, since: Option<i64>) -> Result<Subscription> {
        feed::open(&self.base, &self.credential, id, since).await
    }
    /// Nothing runs on a client's behalf: its pooled connections close with its last clone and
    /// each subscription's socket with that subscription.
    async fn close(&self) {}
}
