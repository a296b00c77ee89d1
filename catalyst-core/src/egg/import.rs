//! Egg → [`NewTemplate`].

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::raw::{RawEgg, RawFind};
use super::{IMPORT_FORMATS, MAX_EGG_BYTES};
use crate::model::{
    ConfigFileEdit, ConfigFormat, ConfigValue, DonePattern, EggOrigin, ImageChoice, InstallScript, NewTemplate,
    StartupCommand, StartupMode, StopAction, TemplateVariable, VariableRules,
};
use crate::{Error, Result};

/// Parse an egg file (JSON or YAML, any supported version) into a template.
///
/// The template runs in entrypoint mode: egg images' entrypoints expand `STARTUP` themselves.
pub fn import(bytes: &[u8]) -> Result<NewTemplate> {
    if bytes.len() > MAX_EGG_BYTES {
        return Err(Error::new(
            crate::ErrorKind::QuotaExceeded,
            format!("egg is {} bytes; the limit is {MAX_EGG_BYTES}", bytes.len()),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| Error::invalid(format!("egg is not UTF-8 text: {e}")))?;
    let text = text.trim_start_matches('\u{feff}');
    let version = peek_version(text)?;
    if !IMPORT_FORMATS.contains(&version.as_str()) {
        return Err(Error::invalid(format!(
            "meta.version: unknown egg format {version:?}; Catalyst reads {}",
            IMPORT_FORMATS.join(", ")
        )));
    }
    let egg: RawEgg = parse(text)?;
    convert(egg, &version)
}

/// JSON when it looks like JSON (so a truncated file says where JSON broke), YAML otherwise.
fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("egg is not valid JSON: {e}")))
    } else {
        serde_norway::from_str(text).map_err(|e| Error::invalid(format!("egg is neither JSON nor valid YAML: {e}")))
    }
}

/// Read `meta.version` first, so an unknown version is reported as such, not as a field error.
fn peek_version(text: &str) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        meta: Option<Meta>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        version: Option<String>,
    }
    let peek: Peek = parse(text)?;
    peek.meta
        .and_then(|m| m.version)
        .ok_or_else(|| Error::invalid("meta.version: missing; this does not look like an egg"))
}

fn convert(egg: RawEgg, version: &str) -> Result<NewTemplate> {
    let name = egg.name.trim().to_string();
    if name.is_empty() {
        return Err(Error::invalid("name: an egg needs a name"));
    }
    let author = egg.author.unwrap_or_default();
    let (images, icon) = images_of(&egg.image, &egg.images.0, &egg.docker_images.0);
    let image = images
        .first()
        .map(|i| i.image.clone())
        .ok_or_else(|| Error::invalid("docker_images: the egg names no image"))?;
    let (startup, startup_commands) = startups_of(egg.startup, egg.startup_commands.0)?;
    let install = match egg.scripts.installation {
        Some(i) if i.script.as_deref().is_some_and(|s| !s.trim().is_empty()) => {
            let container = i.container.unwrap_or_default();
            if container.trim().is_empty() {
                return Err(Error::invalid("scripts.installation.container: a script needs an image to run in"));
            }
            let entrypoint = i.entrypoint.filter(|e| !e.trim().is_empty()).unwrap_or_else(|| "bash".into());
            Some(InstallScript { image: container, entrypoint, script: i.script.unwrap_or_default() })
        }
        _ => None,
    };
    let mut config_files = Vec::new();
    for (path, file) in egg.config.files.0.0 {
        let format = parser_of(&path, &file.parser)?;
        let mut set = BTreeMap::new();
        for (key, find) in file.find.0 {
            let value = match find {
                RawFind::Value(v) => ConfigValue::Always(v.0),
                RawFind::Map(pairs) => ConfigValue::IfValue(pairs.0.into_iter().map(|(k, v)| (k, v.0)).collect()),
            };
            set.insert(key, value);
        }
        config_files.push(ConfigFileEdit { path, format, set });
    }
    // Variables are kept in display order and numbered 1.. (PTDL files have no `sort`: their
    // order is the display order), so every format round-trips to the same template.
    let mut raw = egg.variables;
    raw.sort_by_key(|v| v.sort.unwrap_or(i64::MAX));
    let variables = raw
        .into_iter()
        .enumerate()
        .map(|(i, v)| TemplateVariable {
            name: v.env_variable.trim().to_string(),
            label: v.name,
            description: v.description.unwrap_or_default(),
            default: Some(v.default_value.0),
            user_viewable: v.user_viewable.0,
            user_editable: v.user_editable.0,
            rules: VariableRules(v.rules.0),
            sort: i32::try_from(i + 1).unwrap_or(i32::MAX),
        })
        .collect();
    let uuid = egg.uuid.filter(|u| !u.trim().is_empty()).unwrap_or_else(|| derived_uuid(&author, &name));
    Ok(NewTemplate {
        description: egg.description.unwrap_or_default(),
        image,
        images,
        startup,
        startup_commands,
        startup_mode: StartupMode::Entrypoint,
        env: BTreeMap::new(),
        variables,
        install,
        stop: stop_from_egg(egg.config.stop.as_deref().unwrap_or_default()),
        done_patterns: egg.config.startup.0.done.0.into_iter().filter(|d| !d.is_empty()).map(done_of).collect(),
        config_files,
        file_denylist: egg.file_denylist.0,
        features: egg.features.0,
        egg: Some(EggOrigin {
            uuid,
            format: version.to_string(),
            author,
            update_url: egg.meta.update_url.filter(|u| !u.is_empty()),
            tags: egg.tags.0,
            icon,
        }),
        name,
        group: String::new(),
    })
}

/// Images by display name, and Pelican's icon (an `image` that is a `data:` URI).
fn images_of(
    image: &Option<String>,
    images: &[String],
    docker_images: &[(String, String)],
) -> (Vec<ImageChoice>, Option<String>) {
    let icon = image.clone().filter(|i| i.starts_with("data:"));
    let mut out: Vec<ImageChoice> =
        docker_images.iter().map(|(name, image)| ImageChoice { name: name.clone(), image: image.clone() }).collect();
    if out.is_empty() {
        // PTDL_v1: `images` or `image`, keyed by the image itself.
        let legacy = images.iter().cloned().chain(image.clone().filter(|i| !i.starts_with("data:") && i != "nil"));
        out = legacy.filter(|i| !i.trim().is_empty()).map(|i| ImageChoice { name: i.clone(), image: i }).collect();
    }
    (out, icon)
}

/// The default startup and the named ones. A single command named `Default` is just the startup,
/// so PTDL → PLCN_v3 → import round-trips to the same template.
fn startups_of(startup: Option<String>, commands: Vec<(String, String)>) -> Result<(String, Vec<StartupCommand>)> {
    if commands.is_empty() {
        return Ok((startup.unwrap_or_default(), Vec::new()));
    }
    let first = commands[0].1.clone();
    if commands.len() == 1 && commands[0].0 == "Default" {
        return Ok((first, Vec::new()));
    }
    let named = commands.into_iter().map(|(name, command)| StartupCommand { name, command }).collect();
    Ok((first, named))
}

fn parser_of(path: &str, parser: &str) -> Result<ConfigFormat> {
    ConfigFormat::from_egg_name(parser).ok_or_else(|| {
        Error::invalid(format!(
            "config.files[{path:?}].parser: unknown parser {parser:?}; expected file, properties, yaml, json, ini or xml"
        ))
    })
}

fn done_of(d: String) -> DonePattern {
    match d.strip_prefix("regex:") {
        Some(re) => DonePattern::Regex(re.to_string()),
        None => DonePattern::Substring(d),
    }
}

/// An egg's `config.stop`: a console command, or `^` and a signal. `^C` and `^^C` mean SIGINT
/// (what their authors want; Wings sends SIGKILL), `^SIGTERM` and the like name one; an
/// unknown name is SIGKILL, as Wings does.
pub fn stop_from_egg(stop: &str) -> StopAction {
    let stop = stop.trim();
    if stop.is_empty() {
        return StopAction::Signal("SIGTERM".into());
    }
    let Some(name) = stop.strip_prefix('^') else {
        return StopAction::Command(stop.to_string());
    };
    let name = name.trim_start_matches('^').to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let signal = match name {
        "C" | "INT" => "SIGINT",
        "TERM" => "SIGTERM",
        "ABRT" => "SIGABRT",
        "QUIT" | "\\" => "SIGQUIT",
        "HUP" => "SIGHUP",
        "USR1" => "SIGUSR1",
        "USR2" => "SIGUSR2",
        _ => "SIGKILL",
    };
    StopAction::Signal(signal.into())
}

/// PTDL eggs have no uuid: derive a stable one from author and name, so a re-import updates.
fn derived_uuid(author: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("catalyst-egg\0{author}\0{name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}
