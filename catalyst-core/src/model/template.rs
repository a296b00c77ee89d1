use std::collections::BTreeMap;

use crate::id::TemplateId;
use crate::model::Timestamp;

/// A recipe for a kind of server: image, startup command, variables, install script.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Template {
    /// Unique id (UUID), assigned by Catalyst when the template is created.
    pub id: TemplateId,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Container image the server runs in.
    pub image: String,
    /// Startup command with `{{VAR}}` placeholders.
    pub startup: String,
    /// Fixed environment, values may hold `{{VAR}}` placeholders.
    pub env: BTreeMap<String, String>,
    /// Variables a server fills in.
    pub variables: Vec<TemplateVariable>,
    /// How the server's files are installed.
    pub install: Option<InstallScript>,
    /// How the server is asked to stop.
    pub stop: StopAction,
    /// Console output that means "started"; empty means running as soon as started.
    pub done_patterns: Vec<DonePattern>,
    /// Files edited with rendered values before each start.
    pub config_files: Vec<ConfigFileEdit>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Compare-and-swap version.
    pub version: i64,
}

/// A variable a server sets, with the rules its value must satisfy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateVariable {
    /// `UPPER_SNAKE` name used as `{{NAME}}` and as an env variable.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Z][A-Z0-9_]{0,63}$")]
    pub name: String,
    /// What it means.
    #[serde(default)]
    pub description: String,
    /// Value used when the server gives none.
    #[serde(default)]
    pub default: Option<String>,
    /// May the server's owner change it (otherwise admins only)?
    #[serde(default = "yes")]
    pub user_editable: bool,
    /// Validation rules.
    #[serde(default)]
    pub rules: VariableRules,
}

fn yes() -> bool {
    true
}

/// Validation rules of a variable. Every rule that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableRules {
    /// A value (or a default) must exist.
    #[serde(default)]
    pub required: bool,
    /// The value's type.
    #[serde(default)]
    pub kind: VariableKind,
    /// Minimum: the number for `int`, the length for `string`.
    #[serde(default)]
    pub min: Option<i64>,
    /// Maximum: the number for `int`, the length for `string`.
    #[serde(default)]
    pub max: Option<i64>,
    /// A regular expression the whole value must match.
    #[serde(default)]
    pub regex: Option<String>,
    /// The value must be one of these.
    #[serde(default)]
    pub one_of: Option<Vec<String>>,
}

/// The type of a variable's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariableKind {
    /// Any text.
    #[default]
    String,
    /// A signed integer.
    Int,
    /// `true` or `false`.
    Bool,
}

/// The install step: a script run once in its own container.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallScript {
    /// Image the script runs in.
    #[schema(min_length = 1)]
    pub image: String,
    /// Interpreter, e.g. `/bin/sh`.
    #[serde(default = "default_entrypoint")]
    pub entrypoint: String,
    /// The script itself; variables arrive as environment, never spliced into the text.
    #[schema(max_length = 1048576)]
    pub script: String,
}

fn default_entrypoint() -> String {
    "/bin/sh".into()
}

/// How a server is asked to stop before it is killed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum StopAction {
    /// A line written to the console, e.g. `stop`.
    Command(String),
    /// A signal name, e.g. `SIGTERM`.
    Signal(String),
}

/// Console output meaning "the server is up".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum DonePattern {
    /// The line contains this text.
    Substring(String),
    /// The line matches this regular expression.
    Regex(String),
}

/// Edits applied to one configuration file before start.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFileEdit {
    /// Path relative to the server root.
    pub path: String,
    /// How keys are found.
    pub format: ConfigFormat,
    /// Key → value with `{{VAR}}` placeholders.
    pub set: BTreeMap<String, String>,
}

/// Formats the config editor understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigFormat {
    /// `key=value` lines (Minecraft's server.properties).
    Properties,
    /// A JSON document; keys are dotted paths.
    Json,
}
