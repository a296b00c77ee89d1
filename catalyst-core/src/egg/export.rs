//! [`Template`] → egg file (JSON), in the field order Pterodactyl and Pelican write.

use serde::Serialize;
use serde_json::json;

use super::EggFormat;
use super::raw::Ordered;
use crate::model::{ConfigFileEdit, ConfigValue, DonePattern, StopAction, Template, Timestamp};
use crate::{Error, Result};

#[derive(Serialize)]
struct Egg<'a> {
    _comment: &'static str,
    meta: serde_json::Value,
    exported_at: String,
    name: &'a str,
    author: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uuid: Option<&'a str>,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [String]>,
    features: &'a [String],
    docker_images: Ordered<&'a str>,
    file_denylist: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    startup: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    startup_commands: Option<Ordered<&'a str>>,
    config: serde_json::Value,
    scripts: serde_json::Value,
    variables: Vec<serde_json::Value>,
}

/// Write `t` as an egg in `format`.
pub fn export(t: &Template, format: EggFormat, exported_at: Timestamp) -> Result<String> {
    let plcn = format == EggFormat::PlcnV3;
    let origin = t.egg.as_ref();
    let mut images: Vec<(String, &str)> = t.images.iter().map(|i| (i.name.clone(), i.image.as_str())).collect();
    if !t.images.iter().any(|i| i.image == t.image) {
        images.insert(0, (t.image.clone(), t.image.as_str()));
    }
    let commands: Vec<(String, &str)> = if t.startup_commands.is_empty() {
        vec![("Default".to_string(), t.startup.as_str())]
    } else {
        t.startup_commands.iter().map(|s| (s.name.clone(), s.command.as_str())).collect()
    };
    let files = Ordered(t.config_files.iter().map(|f| (f.path.clone(), file_json(f))).collect());
    let done: Vec<String> = t
        .done_patterns
        .iter()
        .map(|d| match d {
            DonePattern::Substring(s) => s.clone(),
            DonePattern::Regex(r) => format!("regex:{r}"),
        })
        .collect();
    let config = json!({
        "files": encode(&files)?,
        "startup": encode(&json!({"done": done}))?,
        "logs": "{}",
        "stop": stop_to_egg(&t.stop),
    });
    let install = t.install.as_ref();
    let scripts = json!({"installation": {
        "script": install.map(|i| i.script.as_str()).unwrap_or_default(),
        "container": install.map(|i| i.image.as_str()).unwrap_or("alpine:3"),
        "entrypoint": install.map(|i| i.entrypoint.as_str()).unwrap_or("ash"),
    }});
    let mut variables: Vec<_> = t.variables.iter().collect();
    variables.sort_by_key(|v| v.sort);
    let variables = variables
        .into_iter()
        .map(|v| {
            let mut out = json!({
                "name": if v.label.is_empty() { &v.name } else { &v.label },
                "description": v.description,
                "env_variable": v.name,
                "default_value": v.default.clone().unwrap_or_default(),
                "user_viewable": v.user_viewable,
                "user_editable": v.user_editable,
                "rules": if plcn { json!(v.rules.0) } else { json!(v.rules.joined()) },
            });
            if plcn {
                out["sort"] = json!(v.sort);
            } else {
                out["field_type"] = json!("text");
            }
            out
        })
        .collect();
    let egg = Egg {
        _comment: "DO NOT EDIT: FILE GENERATED AUTOMATICALLY BY CATALYST",
        meta: json!({"version": format.version(), "update_url": origin.and_then(|o| o.update_url.clone())}),
        exported_at: exported_at.to_rfc3339(),
        name: &t.name,
        author: origin.map(|o| o.author.as_str()).filter(|a| !a.is_empty()).unwrap_or("catalyst@localhost"),
        // Pterodactyl ignores it; it lets a PTDL export re-import onto the same template.
        uuid: origin.map(|o| o.uuid.as_str()),
        description: &t.description,
        image: plcn.then(|| origin.and_then(|o| o.icon.as_deref())).flatten(),
        tags: plcn.then(|| origin.map(|o| o.tags.as_slice()).unwrap_or_default()),
        features: &t.features,
        docker_images: Ordered(images),
        file_denylist: &t.file_denylist,
        startup: (!plcn).then_some(t.startup.as_str()),
        startup_commands: plcn.then_some(Ordered(commands)),
        config,
        scripts,
        variables,
    };
    serde_json::to_string_pretty(&egg).map_err(|e| Error::internal("egg export", e))
}

/// Config blocks are JSON documents inside strings, in both formats' JSON files.
fn encode(v: &impl Serialize) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::internal("egg export", e))
}

fn file_json(f: &ConfigFileEdit) -> serde_json::Value {
    let parser = f.format.name();
    let find: serde_json::Map<String, serde_json::Value> = f
        .set
        .iter()
        .map(|(k, v)| {
            let v = match v {
                ConfigValue::Always(s) => json!(s),
                ConfigValue::IfValue(m) => json!(m),
            };
            (k.clone(), v)
        })
        .collect();
    json!({"parser": parser, "find": find})
}

/// The egg's `config.stop` for a stop action (SIGINT is written `^C`, as eggs do).
fn stop_to_egg(stop: &StopAction) -> String {
    match stop {
        StopAction::Command(c) => c.clone(),
        StopAction::Signal(s) => {
            let upper = s.to_ascii_uppercase();
            let name = upper.strip_prefix("SIG").unwrap_or(&upper);
            if name == "INT" { "^C".into() } else { format!("^SIG{name}") }
        }
    }
}
