//! Config-file editors for the six Pterodactyl/Pelican egg parsers (`config.files`).
//!
//! A node applies these before every start of a game server: for each configured file it
//! reads the current text, calls [`apply`] with the egg's parser and the replacements (with
//! the panel's placeholders already resolved), and writes the result back. [`apply`] is pure
//! (no I/O) and never panics; on an [`EditError`] the caller leaves the file untouched.
//!
//! Semantics follow pterodactyl/wings `parser/parser.go` and `parser/helpers.go`, with these
//! deliberate differences (all documented on the per-parser modules):
//! - `file`: the first matching replacement wins for a line (Wings writes every matching one),
//!   and line endings / the final newline are kept as found.
//! - `properties`, `ini`, `xml`: edited in place, comments and layout kept.
//! - `json`/`yaml`: one path engine ([`path`]); key order is kept; a value is typed as an
//!   integer when it is a canonical integer (as Wings' `strconv.Atoi`), and as a bool or float
//!   only when the value it replaces already is a bool / float; everything else is a string.
//! - [`Value::IfValue`] works for every parser; the path must exist (nothing is created), the
//!   plain form compares the current value as a string, the `regex:<re>` form replaces every
//!   match of `<re>` in the current value with the new value (`$1` expands, as Go's
//!   `ReplaceAllString`).

mod file;
mod ini;
mod json;
mod path;
mod properties;
#[cfg(test)]
mod tests;
mod xml;
mod yaml;

use std::fmt;

/// Largest input accepted by [`apply`], in bytes (8 MiB); bigger files are refused.
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;

/// A config file format (the egg's `parser`): the template model's own.
pub use crate::model::ConfigFormat as Parser;

/// What one match is set to; placeholders are already resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Always set to this.
    Always(String),
    /// Set only if the current value equals the key (or matches it, when the key is `regex:<re>`); first match wins.
    IfValue(Vec<(String, String)>),
}

/// One edit: the egg's `find` key (a line prefix for `file`, a key for `properties`, a dotted path for yaml/json/ini/xml) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// The egg's `find` key (`match` in what the panel sends).
    pub path: String,
    /// The value to set.
    pub value: Value,
}

/// Why a file could not be edited (it is then left untouched by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError {
    /// Human-readable reason, starting with the parser name (e.g. `json: ...`).
    pub message: String,
}

impl EditError {
    fn new(parser: Parser, message: impl fmt::Display) -> EditError {
        EditError { message: format!("{}: {message}", parser.name()) }
    }
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EditError {}

/// Apply `edits` to the file's current text (`None` = the file does not exist: it is created).
/// Returns the new text. Pure: no I/O.
pub fn apply(parser: Parser, current: Option<&str>, edits: &[Replacement]) -> Result<String, EditError> {
    if let Some(text) = current
        && text.len() > MAX_INPUT_BYTES
    {
        return Err(EditError::new(
            parser,
            format!("file is {} bytes, over the {MAX_INPUT_BYTES}-byte limit", text.len()),
        ));
    }
    match parser {
        Parser::File => file::apply(current, edits),
        Parser::Properties => properties::apply(current, edits),
        Parser::Yaml => yaml::apply(current, edits),
        Parser::Json => json::apply(current, edits),
        Parser::Ini => ini::apply(current, edits),
        Parser::Xml => xml::apply(current, edits),
    }
}

/// What an edit produces for one existing value `current` (`None` = the target is missing).
/// `Ok(None)` means "leave it alone".
fn resolve(parser: Parser, value: &Value, current: Option<&str>) -> Result<Option<String>, EditError> {
    match value {
        Value::Always(v) => Ok(Some(v.clone())),
        Value::IfValue(pairs) => {
            let Some(current) = current else {
                return Ok(None);
            };
            for (key, new) in pairs {
                if let Some(re) = key.strip_prefix("regex:") {
                    let re = regex::RegexBuilder::new(re)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| EditError::new(parser, format!("invalid if_value regex `{re}`: {e}")))?;
                    if re.is_match(current) {
                        return Ok(Some(re.replace_all(current, new.as_str()).into_owned()));
                    }
                } else if key == current {
                    return Ok(Some(new.clone()));
                }
            }
            Ok(None)
        }
    }
}

/// The edits of one of a template's config files (values already rendered), in this module's terms.
pub fn plan(edit: &crate::model::ConfigFileEdit) -> Vec<Replacement> {
    use crate::model::ConfigValue;
    edit.set
        .iter()
        .map(|(path, value)| Replacement {
            path: path.clone(),
            value: match value {
                ConfigValue::Always(v) => Value::Always(v.clone()),
                ConfigValue::IfValue(map) => Value::IfValue(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            },
        })
        .collect()
}
