//! Template variables: validation against their rules (`variables.rs`), and `{{VAR}}` rendering
//! for startup lines (`shell.rs`) and config files (`config.rs`).
//!
//! Rendering is one pass over the template text with an explicit allow-list of values: a
//! value that itself contains `{{…}}` is copied verbatim, never evaluated again, so user input
//! cannot reach another variable (or a node secret).
//!
//! Shell command lines are different: a value spliced into `sh -c` text is shell syntax, so
//! [`render_shell`] never splices values at all (see `render/shell.rs`).

use std::collections::BTreeMap;

mod config;
mod shell;
mod variables;

pub use config::{
    CONFIG_ENV_PREFIXES, CONFIG_PLACEHOLDERS, ConfigFacts, NODE_INTERFACE, config_context, render_edit,
    with_node_interface,
};
pub use shell::render_shell;
pub use variables::{check_value, check_variable_name, resolve_variables, validate_template};

use crate::{Error, Result};

/// Values every template may use besides its own variables; a variable may not take their
/// names (compared ignoring case). They are also what egg images' entrypoints read.
pub const BUILTIN_VARIABLES: &[&str] = &[
    "SERVER_ID",
    "SERVER_UUID",
    "SERVER_MEMORY",
    "SERVER_IP",
    "SERVER_PORT",
    "STARTUP",
    "TZ",
    "P_SERVER_UUID",
    "P_SERVER_LOCATION",
    "P_SERVER_ALLOCATION_LIMIT",
];

/// The values a template may see, and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderContext {
    values: BTreeMap<String, String>,
}

impl RenderContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allow `{{name}}` to render as `value`.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// Allow every pair of `values`.
    pub fn extend(mut self, values: &BTreeMap<String, String>) -> Self {
        self.values.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// The allowed values, e.g. to pass as environment variables.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }
}

/// Replace every `{{NAME}}` in `text` with its value from `ctx`.
///
/// An unknown name is an `invalid_input` error naming it; so is an unclosed `{{`.
pub fn render(text: &str, ctx: &RenderContext) -> Result<String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| Error::invalid(format!("unclosed '{{{{' in {:?}", truncate(text))))?;
        let name = after[..end].trim();
        let value = ctx
            .values
            .get(name)
            .ok_or_else(|| Error::invalid(format!("unknown variable {{{{{name}}}}} in template")))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(60) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_once_without_re_evaluating_values() {
        let ctx = RenderContext::new().with("A", "{{SECRET}}").with("SECRET", "hunter2");
        assert_eq!(render("x {{A}} y {{ SECRET }}", &ctx).ok().as_deref(), Some("x {{SECRET}} y hunter2"));
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_errors() {
        let ctx = RenderContext::new().with("A", "1");
        let e = render("{{B}}", &ctx).expect_err("unknown");
        assert!(e.message().contains("{{B}}"), "{}", e.message());
        assert!(render("{{A", &ctx).is_err());
        assert_eq!(render("no vars", &ctx).ok().as_deref(), Some("no vars"));
    }
}
