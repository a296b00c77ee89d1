use std::collections::BTreeMap;

use crate::id::TemplateId;
use crate::model::Timestamp;

/// A recipe for a kind of server: image, startup command, variables, install script.
///
/// Pterodactyl/Pelican eggs import into templates (`crate::egg`); the fields below carry all an
/// egg carries, so an export writes the egg back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Template {
    /// Unique id (UUID), assigned by Catalyst when the template is created.
    pub id: TemplateId,
    /// Stable integer id, assigned by the store on insert (the Pterodactyl API's egg `id`).
    #[serde(default)]
    pub number: u64,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The group it belongs to (Pterodactyl's *nest*); empty for none.
    #[serde(default)]
    pub group: String,
    /// Container image servers run in unless they chose another of `images`.
    pub image: String,
    /// Images a server may choose from (display name → image); `image` is the default.
    #[serde(default)]
    pub images: Vec<ImageChoice>,
    /// Startup command with `{{VAR}}` placeholders.
    pub startup: String,
    /// Further named startup commands a server may choose from (Pelican's PLCN_v3).
    #[serde(default)]
    pub startup_commands: Vec<StartupCommand>,
    /// How the startup runs: by Catalyst's shell, or handed to the image's entrypoint.
    #[serde(default)]
    pub startup_mode: StartupMode,
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
    /// Globs (relative to the server root) the file manager and SFTP refuse to touch.
    #[serde(default)]
    pub file_denylist: Vec<String>,
    /// Panel features (e.g. `eula`, `java_version`): console triggers the panel reacts to.
    #[serde(default)]
    pub features: Vec<String>,
    /// Where it was imported from, when it came from an egg.
    #[serde(default)]
    pub egg: Option<EggOrigin>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Compare-and-swap version.
    pub version: i64,
}

impl Template {
    /// The image a server runs: its own choice (which must be one of the template's), or the default.
    pub fn image_for(&self, chosen: Option<&str>) -> crate::Result<&str> {
        match chosen {
            None => Ok(&self.image),
            Some(c) if c == self.image => Ok(&self.image),
            Some(c) => self.images.iter().find(|i| i.image == c).map(|i| i.image.as_str()).ok_or_else(|| {
                crate::Error::invalid(format!("image {c:?} is not one of template {}'s images", self.name))
            }),
        }
    }

    /// The startup command a server runs: the one it chose by name, or the default.
    pub fn startup_for(&self, chosen: Option<&str>) -> crate::Result<&str> {
        match chosen {
            None => Ok(&self.startup),
            Some(name) => {
                self.startup_commands.iter().find(|s| s.name == name).map(|s| s.command.as_str()).ok_or_else(|| {
                    crate::Error::invalid(format!("template {} has no startup command named {name:?}", self.name))
                })
            }
        }
    }
}

/// One image a server may run in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageChoice {
    /// What the panel shows, e.g. `Java 21`.
    pub name: String,
    /// The image reference.
    pub image: String,
}

/// A named startup command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartupCommand {
    /// What the panel shows, e.g. `Default`.
    pub name: String,
    /// The command, with `{{VAR}}` placeholders.
    pub command: String,
}

/// How a server's startup command runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartupMode {
    /// Catalyst runs the command with `/bin/sh -c`; values arrive as environment variables.
    #[default]
    Shell,
    /// The image's own ENTRYPOINT/CMD runs, with the raw command in `STARTUP` (what egg images
    /// expect: their entrypoint expands `{{VAR}}` from the environment).
    Entrypoint,
}

/// Where an imported template came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EggOrigin {
    /// The egg's uuid; importing an egg with the same uuid updates this template.
    pub uuid: String,
    /// The format version it was imported from, e.g. `PTDL_v2`.
    pub format: String,
    /// The egg's author.
    #[serde(default)]
    pub author: String,
    /// Where the egg's author publishes updates.
    #[serde(default)]
    pub update_url: Option<String>,
    /// Pelican's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Pelican's icon (a `data:` URI).
    #[serde(default)]
    pub icon: Option<String>,
}

/// A variable a server sets, with the rules its value must satisfy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateVariable {
    /// Name used as `{{NAME}}` and as the environment variable (letters, digits, `_`).
    #[schema(min_length = 1, max_length = 191, pattern = r"^[A-Za-z_][A-Za-z0-9_]{0,190}$")]
    pub name: String,
    /// What the panel shows (defaults to `name`).
    #[serde(default)]
    pub label: String,
    /// What it means.
    #[serde(default)]
    pub description: String,
    /// Value used when the server gives none.
    #[serde(default)]
    pub default: Option<String>,
    /// May the server's owner see it (otherwise admins only)?
    #[serde(default = "yes")]
    pub user_viewable: bool,
    /// May the server's owner change it (otherwise admins only)? Needs `user_viewable`.
    #[serde(default = "yes")]
    pub user_editable: bool,
    /// Laravel validation rules, e.g. `["required", "integer", "between:1,100"]`.
    #[serde(default)]
    pub rules: VariableRules,
    /// Display order (lower first).
    #[serde(default)]
    pub sort: i32,
}

impl Default for TemplateVariable {
    fn default() -> Self {
        Self {
            name: String::new(),
            label: String::new(),
            description: String::new(),
            default: None,
            user_viewable: true,
            user_editable: true,
            rules: VariableRules::default(),
            sort: 0,
        }
    }
}

fn yes() -> bool {
    true
}

/// Validation rules of a variable as Laravel writes them (`crate::rules` checks them).
///
/// Accepted as a list (`["required", "max:20"]`), as one string (`"required|max:20"`), or as
/// the object earlier Catalyst versions stored (`{"required": true, "kind": "int", …}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(value_type = Vec<String>)]
pub struct VariableRules(pub Vec<String>);

impl VariableRules {
    /// Rules from a PTDL rule string such as `required|regex:/^a|b$/`.
    pub fn parse(rules: &str) -> Self {
        Self(crate::rules::split(rules))
    }

    /// The Laravel rule string.
    pub fn joined(&self) -> String {
        self.0.join("|")
    }
}

impl<'de> serde::Deserialize<'de> for VariableRules {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Text(String),
            Legacy(LegacyRules),
        }
        Ok(match Form::deserialize(d)? {
            Form::List(list) => {
                Self(list.into_iter().map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect())
            }
            Form::Text(text) => Self::parse(&text),
            Form::Legacy(old) => old.translate(),
        })
    }
}

/// The rules object Catalyst stored before eggs; translated to Laravel rules on read.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyRules {
    #[serde(default)]
    required: bool,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    max: Option<i64>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    one_of: Option<Vec<String>>,
}

impl LegacyRules {
    fn translate(self) -> VariableRules {
        let mut out = vec![if self.required { "required" } else { "nullable" }.to_string()];
        match self.kind.as_deref() {
            Some("int") => out.push("integer".into()),
            Some("bool") => out.push("in:true,false".into()),
            _ => out.push("string".into()),
        }
        out.extend(self.min.map(|m| format!("min:{m}")));
        out.extend(self.max.map(|m| format!("max:{m}")));
        // The old regex matched the whole value; Laravel's searches, so anchor it.
        out.extend(self.regex.map(|r| format!("regex:/^(?:{})$/", r.replace('/', "\\/"))));
        if let Some(options) = self.one_of {
            out.push(format!("in:{}", options.iter().map(|o| csv_field(o)).collect::<Vec<_>>().join(",")));
        }
        VariableRules(out)
    }
}

/// One `str_getcsv` field: quoted when it holds a comma or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
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
    /// Key (a line prefix, a key or a dotted path, by format) → value with placeholders.
    pub set: BTreeMap<String, ConfigValue>,
}

/// What a config key is set to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ConfigValue {
    /// Always this value.
    Always(String),
    /// Current value → new value: replaced only where the current value is a key (or matches
    /// it, for a key `regex:<re>`). Eggs write this as an object value.
    IfValue(BTreeMap<String, String>),
}

/// Formats the config editor understands (the six parsers of Pterodactyl's Wings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigFormat {
    /// Lines starting with the key are replaced whole.
    File,
    /// `key=value` lines (Minecraft's server.properties).
    Properties,
    /// A YAML document; keys are dotted paths.
    #[serde(alias = "yml")]
    Yaml,
    /// A JSON document; keys are dotted paths (`a.*.b`, `a[0]`).
    Json,
    /// `key` or `section.key`.
    Ini,
    /// An XML document; keys are dotted element paths.
    Xml,
}

impl ConfigValue {
    /// The replacement texts (with placeholders), not the `if_value` keys they are chosen by.
    pub fn texts(&self) -> Vec<&String> {
        match self {
            Self::Always(v) => vec![v],
            Self::IfValue(map) => map.values().collect(),
        }
    }
}

impl ConfigFormat {
    /// An egg's `parser` (`file`, `properties`, `yaml`/`yml`, `json`, `ini`, `xml`; any case).
    pub fn from_egg_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "file" => Some(Self::File),
            "properties" => Some(Self::Properties),
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            "ini" => Some(Self::Ini),
            "xml" => Some(Self::Xml),
            _ => None,
        }
    }

    /// The egg's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Properties => "properties",
            Self::Yaml => "yaml",
            Self::Json => "json",
            Self::Ini => "ini",
            Self::Xml => "xml",
        }
    }
}
