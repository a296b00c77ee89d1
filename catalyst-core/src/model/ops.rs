//! Operational records: logs, metrics, audit, backups, tasks, alerts, API keys.

use std::fmt;

use crate::id::{AlertId, AlertRuleId, ApiKeyId, AuditId, DeliveryId, NodeId, ServerId, TaskId, UserId};
use crate::model::Timestamp;
use crate::permission::Permission;

/// Which stream a console line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
    /// Catalyst's own notes (state changes, install steps, throttling).
    System,
}

impl LogStream {
    /// Stable text form stored in databases.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "system",
        }
    }

    /// Parse the stored text form.
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "stdout" => Ok(LogStream::Stdout),
            "stderr" => Ok(LogStream::Stderr),
            "system" => Ok(LogStream::System),
            other => Err(crate::Error::invalid(format!("unknown log stream {other:?}"))),
        }
    }
}

/// One console line. `(server_id, seq)` is unique: appending the same line twice is a no-op.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ServerLog {
    /// The server.
    pub server_id: ServerId,
    /// Per-server sequence number assigned by the node, strictly increasing.
    pub seq: i64,
    /// Source stream.
    pub stream: LogStream,
    /// The text, without the trailing newline.
    pub line: String,
    /// When the node saw it.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// Filter for reading logs back, newest first.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only this stream.
    #[serde(default)]
    pub stream: Option<LogStream>,
    /// Only lines with `seq < before` (pagination cursor).
    #[serde(default)]
    pub before: Option<i64>,
    /// Only lines with `seq > after` (resume cursor).
    #[serde(default)]
    pub after: Option<i64>,
    /// At most this many (clamped like a page).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One resource sample of one server.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ServerMetrics {
    /// The server.
    pub server_id: ServerId,
    /// Sample time.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// CPU in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory.
    pub memory_bytes: u64,
    /// Memory limit.
    pub memory_limit_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Bytes used by the server directory.
    pub disk_bytes: u64,
}

/// The length of a roll-up period.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Period {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    /// The period's length.
    pub fn length(self) -> chrono::Duration {
        match self {
            Period::Hour => chrono::Duration::hours(1),
            Period::Day => chrono::Duration::days(1),
        }
    }

    /// The start of the period containing `at`.
    pub fn start_of(self, at: Timestamp) -> Timestamp {
        let secs = self.length().num_seconds();
        let t = at.timestamp().div_euclid(secs) * secs;
        chrono::DateTime::from_timestamp(t, 0).unwrap_or(at)
    }
}

/// Samples of one server over one period, summarised.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct MetricsRollup {
    /// The server.
    pub server_id: ServerId,
    /// Hour or day.
    pub period: Period,
    /// Start of the period.
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// Samples summarised.
    pub samples: u64,
    /// Mean CPU, percent of one core.
    pub cpu_avg: f64,
    /// Peak CPU.
    pub cpu_max: f64,
    /// Mean resident memory, bytes.
    pub memory_avg_bytes: f64,
    /// Peak resident memory.
    pub memory_max_bytes: u64,
    /// Largest directory size seen.
    pub disk_max_bytes: u64,
    /// Received bytes counter at its highest.
    pub rx_bytes: u64,
    /// Sent bytes counter at its highest.
    pub tx_bytes: u64,
}

/// Who did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum ActorRef {
    /// A logged-in user.
    User(UserId),
    /// A user acting through an API key.
    ApiKey(ApiKeyId),
    /// A node agent.
    Node(NodeId),
    /// Catalyst itself (scheduler, crash policy, bootstrap).
    System,
    /// Nobody authenticated (e.g. a failed login).
    Anonymous,
}

/// One audited action.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditLog {
    /// Unique id (UUID), assigned when the entry is recorded.
    pub id: AuditId,
    /// Who acted.
    pub actor: ActorRef,
    /// The user behind the actor, for filtering.
    pub user_id: Option<UserId>,
    /// Dotted verb, e.g. `server.start`, `auth.login`.
    pub action: String,
    /// Kind of object acted on, e.g. `server`.
    pub target_type: String,
    /// Its id, if any.
    pub target_id: Option<String>,
    /// Did it succeed?
    pub success: bool,
    /// Extra facts (never secrets).
    pub details: serde_json::Value,
    /// Client address, when known.
    pub ip: Option<String>,
    /// When the action happened (UTC, RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// Filter for audit queries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this user.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Only this action (exact), or a prefix ending in `.` (e.g. `server.`).
    #[serde(default)]
    pub action: Option<String>,
    /// Only this target type.
    #[serde(default)]
    pub target_type: Option<String>,
    /// Only this target id.
    #[serde(default)]
    pub target_id: Option<String>,
    /// At or after.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Only entries strictly before this time (UTC); `from` is inclusive.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
}

/// What a scheduled task does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum TaskAction {
    /// Start the server.
    Start,
    /// Stop the server.
    Stop,
    /// Restart the server.
    Restart,
    /// Take a backup.
    Backup,
    /// Send a console command.
    Command(String),
}

/// What to do about firings missed while no control plane was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Forget missed firings.
    #[default]
    Skip,
    /// Run once for all missed firings.
    RunOnce,
}

/// A cron-driven action on a server.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ScheduledTask {
    /// Unique id (UUID), assigned by Catalyst when the task is created.
    pub id: TaskId,
    /// The server acted on.
    pub server_id: ServerId,
    /// Display name.
    pub name: String,
    /// Cron expression (croner syntax: seconds optional, L, W, #).
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// What it does.
    pub action: TaskAction,
    /// Disabled tasks never fire.
    pub enabled: bool,
    /// Missed-run policy.
    pub catch_up: CatchUp,
    /// Whose permissions the task runs with.
    pub created_by: UserId,
    /// Last firing.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_run_at: Option<Timestamp>,
    /// Next planned firing.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_run_at: Option<Timestamp>,
    /// Firings so far.
    pub run_count: u64,
    /// Outcome of the last firing.
    pub last_result: Option<String>,
    /// Error of the last firing.
    pub last_error: Option<String>,
    /// Compare-and-swap version (claims a firing).
    pub version: i64,
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

/// A raised alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// Unique id (UUID), assigned by Catalyst when the alert is raised.
    pub id: AlertId,
    /// The rule that raised it.
    pub rule_id: Option<AlertRuleId>,
    /// The server concerned.
    pub server_id: Option<ServerId>,
    /// The node concerned.
    pub node_id: Option<NodeId>,
    /// Kind, e.g. `resource_threshold`, `node_offline`, `server_crashed`.
    pub kind: String,
    /// How urgent: `info`, `warning` or `critical` (a rule's alerts take the rule's severity).
    pub severity: Severity,
    /// Text for humans.
    pub message: String,
    /// Resolved alerts are kept for history.
    pub resolved: bool,
    /// Raised at.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Resolved at.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    /// Resolved by.
    pub resolved_by: Option<UserId>,
}

/// The resource an alert threshold watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertMetric {
    /// CPU in percent of one core.
    Cpu,
    /// Resident memory in percent of the limit.
    Memory,
    /// The server directory in percent of the disk limit.
    Disk,
}

/// When an alert rule fires.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum AlertCondition {
    /// Every sample of the last `for_secs` is above `above_percent` (one server, or all).
    ResourceThreshold {
        /// The resource.
        metric: AlertMetric,
        /// The threshold in percent.
        #[schema(minimum = 0, maximum = 100000)]
        above_percent: f64,
        /// How long it must hold.
        #[schema(maximum = 604800)]
        for_secs: u64,
        /// Only this server.
        #[serde(default)]
        server_id: Option<ServerId>,
    },
    /// The node's agent has been disconnected for `for_secs` (one node, or all).
    NodeOffline {
        /// Only this node.
        #[serde(default)]
        node_id: Option<NodeId>,
        /// How long it must be offline.
        #[schema(maximum = 604800)]
        for_secs: u64,
    },
    /// The server is in the `crashed` state (one server, or all).
    ServerCrashed {
        /// Only this server.
        #[serde(default)]
        server_id: Option<ServerId>,
    },
}

impl AlertCondition {
    /// The alert kind it raises.
    pub fn kind(&self) -> &'static str {
        match self {
            AlertCondition::ResourceThreshold { .. } => "resource_threshold",
            AlertCondition::NodeOffline { .. } => "node_offline",
            AlertCondition::ServerCrashed { .. } => "server_crashed",
        }
    }
}

/// Body shape a webhook receiver expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"event", "text", "data"}`.
    #[default]
    Generic,
    /// A Discord webhook (`{"content"}`).
    Discord,
    /// A Slack incoming webhook (`{"text"}`).
    Slack,
}

/// Where and how to deliver a webhook.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// `http` or `https` URL.
    #[schema(pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://")]
    pub url: String,
    /// Body shape.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Signing secret (HMAC-SHA256); unsigned when absent. Never serialized back.
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget").field("url", &self.url).field("format", &self.format).finish_non_exhaustive()
    }
}

/// The outcome of one webhook delivery (all its attempts).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    /// Unique id (UUID), assigned by Catalyst when the delivery is first attempted.
    pub id: DeliveryId,
    /// The alert it told about.
    pub alert_id: Option<AlertId>,
    /// The target URL.
    pub url: String,
    /// Event kind, e.g. `alert.raised`.
    pub event: String,
    /// Did the receiver answer 2xx?
    pub delivered: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it finished.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// A condition plus the webhooks told when it holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AlertRule {
    /// Unique id (UUID), assigned by Catalyst when the rule is created.
    pub id: AlertRuleId,
    /// Display name.
    pub name: String,
    /// When it fires.
    pub condition: AlertCondition,
    /// Severity of the alerts it raises.
    pub severity: Severity,
    /// Webhooks told about each alert.
    pub webhooks: Vec<WebhookTarget>,
    /// Disabled rules are not evaluated.
    pub enabled: bool,
    /// The user who created the rule (set from the caller; API keys act for their user).
    pub created_by: UserId,
    /// Compare-and-swap version.
    pub version: i64,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertFilter {
    /// Only resolved (true) or open (false) ones.
    pub resolved: Option<bool>,
    /// Only this server's.
    pub server_id: Option<ServerId>,
    /// Only this node's.
    pub node_id: Option<NodeId>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only alerts on servers this user owns or was given access to.
    pub visible_to: Option<UserId>,
}

/// An API key: `catalyst_<prefix>_<secret>`, of which only a hash is stored.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Unique id (UUID), assigned by Catalyst when the key is created.
    pub id: ApiKeyId,
    /// Display name.
    pub name: String,
    /// Public prefix used to find the key.
    pub prefix: String,
    /// SHA-256 of the secret.
    #[serde(skip_serializing, default)]
    pub secret_hash: String,
    /// The user the key acts for.
    pub user_id: UserId,
    /// A subset of the user's permissions.
    pub scopes: Vec<Permission>,
    /// Requests allowed per window.
    pub rate_limit: Option<u32>,
    /// Window length in seconds.
    pub rate_window_secs: u32,
    /// When the key stops working (UTC); `null` means it never expires.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// Last use.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    /// Revoked keys are refused at once.
    pub revoked: bool,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Compare-and-swap version.
    pub version: i64,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("user_id", &self.user_id)
            .field("scopes", &self.scopes)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}
