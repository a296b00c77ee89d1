use std::collections::BTreeMap;

use crate::model::{
    ConfigFileEdit, DonePattern, EggOrigin, ImageChoice, InstallScript, StartupCommand, StartupMode, StopAction,
    TemplateVariable,
};

/// A new template (also the full replacement for updates); what an egg import produces.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    /// Unique name.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: String,
    /// The group it belongs to (Pterodactyl's *nest*).
    #[serde(default)]
    #[schema(max_length = 64)]
    pub group: String,
    /// Default container image.
    #[schema(min_length = 1, max_length = 512, pattern = r"^\S+$")]
    pub image: String,
    /// Images a server may choose instead (display name → image).
    #[serde(default)]
    #[schema(max_items = 32)]
    pub images: Vec<ImageChoice>,
    /// Startup command with `{{VAR}}` placeholders (may be empty in entrypoint mode).
    #[schema(max_length = 8192)]
    pub startup: String,
    /// Further named startup commands.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub startup_commands: Vec<StartupCommand>,
    /// Shell (default) or the image's entrypoint.
    #[serde(default)]
    pub startup_mode: StartupMode,
    /// Fixed environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables servers fill in, used as `{{NAME}}` in `startup` and as environment.
    #[serde(default)]
    #[schema(max_items = 128)]
    pub variables: Vec<TemplateVariable>,
    /// Install step.
    #[serde(default)]
    pub install: Option<InstallScript>,
    /// Stop action (default: SIGTERM).
    #[serde(default = "default_stop")]
    pub stop: StopAction,
    /// "Started" markers.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub done_patterns: Vec<DonePattern>,
    /// Config file edits.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub config_files: Vec<ConfigFileEdit>,
    /// Globs the file manager and SFTP refuse.
    #[serde(default)]
    #[schema(max_items = 256)]
    pub file_denylist: Vec<String>,
    /// Panel features.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub features: Vec<String>,
    /// The egg it came from (set by import).
    #[serde(default)]
    pub egg: Option<EggOrigin>,
}

fn default_stop() -> StopAction {
    StopAction::Signal("SIGTERM".into())
}

impl Default for NewTemplate {
    fn default() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            group: String::new(),
            image: String::new(),
            images: Vec::new(),
            startup: String::new(),
            startup_commands: Vec::new(),
            startup_mode: StartupMode::Shell,
            env: BTreeMap::new(),
            variables: Vec::new(),
            install: None,
            stop: default_stop(),
            done_patterns: Vec::new(),
            config_files: Vec::new(),
            file_denylist: Vec::new(),
            features: Vec::new(),
            egg: None,
        }
    }
}

impl NewTemplate {
    /// The template this input describes (not validated: `render::validate_template` does that).
    pub fn into_template(
        self,
        id: crate::id::TemplateId,
        created_at: crate::model::Timestamp,
        version: i64,
    ) -> crate::model::Template {
        crate::model::Template {
            id,
            number: 0,
            name: self.name,
            description: self.description,
            group: self.group,
            image: self.image,
            images: self.images,
            startup: self.startup,
            startup_commands: self.startup_commands,
            startup_mode: self.startup_mode,
            env: self.env,
            variables: self.variables,
            install: self.install,
            stop: self.stop,
            done_patterns: self.done_patterns,
            config_files: self.config_files,
            file_denylist: self.file_denylist,
            features: self.features,
            egg: self.egg,
            created_at,
            version,
        }
    }

    /// The input that re-creates `t` (what an update starts from).
    pub fn from_template(t: &crate::model::Template) -> Self {
        Self {
            name: t.name.clone(),
            description: t.description.clone(),
            group: t.group.clone(),
            image: t.image.clone(),
            images: t.images.clone(),
            startup: t.startup.clone(),
            startup_commands: t.startup_commands.clone(),
            startup_mode: t.startup_mode,
            env: t.env.clone(),
            variables: t.variables.clone(),
            install: t.install.clone(),
            stop: t.stop.clone(),
            done_patterns: t.done_patterns.clone(),
            config_files: t.config_files.clone(),
            file_denylist: t.file_denylist.clone(),
            features: t.features.clone(),
            egg: t.egg.clone(),
        }
    }
}
