//! Template variables: validation against their rules, and `{{VAR}}` rendering.
//!
//! Rendering is one pass over the template text with an explicit allow-list of values: a
//! value that itself contains `{{…}}` is copied verbatim, never evaluated again, so user input
//! cannot reach another variable (or a node secret).
//!
//! Shell command lines are different: a value spliced into `sh -c` text is shell syntax, so
//! [`render_shell`] never splices values at all (see `render/shell.rs`).

use std::collections::BTreeMap;

mod shell;

pub use shell::render_shell;

use crate::model::{Template, TemplateVariable, VariableKind};
use crate::{Error, Result};

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

/// Check a template's own definition: variable names, rule consistency, regexes, and that
/// every placeholder in startup and env names a declared variable or a built-in.
pub fn validate_template(t: &Template, builtins: &[&str]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for v in &t.variables {
        check_variable_name(&v.name)?;
        if !seen.insert(v.name.as_str()) {
            return Err(Error::invalid(format!("variable {} is declared twice", v.name)));
        }
        if builtins.contains(&v.name.as_str()) {
            return Err(Error::invalid(format!("variable {} shadows a built-in", v.name)));
        }
        if is_reserved_env(&v.name) {
            return Err(Error::invalid(format!(
                "variable {}: its value becomes an environment variable that changes how programs load or \
                 shells parse; choose another name",
                v.name
            )));
        }
        if let Some(re) = &v.rules.regex {
            regex::Regex::new(re).map_err(|e| Error::invalid(format!("variable {}: bad regex: {e}", v.name)))?;
        }
        if let (Some(min), Some(max)) = (v.rules.min, v.rules.max)
            && min > max
        {
            return Err(Error::invalid(format!("variable {}: min {min} exceeds max {max}", v.name)));
        }
        if let Some(default) = &v.default {
            check_value(v, default)?;
        }
    }
    let mut ctx = RenderContext::new();
    for name in t.variables.iter().map(|v| v.name.as_str()).chain(builtins.iter().copied()) {
        ctx = ctx.with(name, "");
    }
    render_shell(&t.startup, &ctx)?;
    for (key, value) in &t.env {
        check_variable_name(key)?;
        render(value, &ctx)?;
    }
    for edit in &t.config_files {
        for value in edit.set.values() {
            render(value, &ctx)?;
        }
    }
    Ok(())
}

/// Environment names a customer's value must never set: the dynamic loader's, and those that
/// make a shell read a file or re-split words.
fn is_reserved_env(name: &str) -> bool {
    const NAMES: &[&str] = &["PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH", "HOME"];
    NAMES.contains(&name) || name.starts_with("LD_") || name.starts_with("BASH_FUNC")
}

/// Names are `UPPER_SNAKE`, 1–64 characters, starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("variable name {name:?} must be UPPER_SNAKE, 1-64 characters")))
    }
}

/// Validate a server's values against the template's variables and fill in defaults.
///
/// Unknown keys are refused; errors name the variable and the rule that failed.
pub fn resolve_variables(template: &Template, given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    for key in given.keys() {
        if !template.variables.iter().any(|v| &v.name == key) {
            return Err(Error::invalid(format!("variable {key} is not defined by template {}", template.name)));
        }
    }
    let mut out = BTreeMap::new();
    for var in &template.variables {
        match given.get(&var.name).or(var.default.as_ref()) {
            Some(value) => {
                check_value(var, value)?;
                out.insert(var.name.clone(), value.clone());
            }
            None if var.rules.required => {
                return Err(Error::invalid(format!("variable {}: rule required: a value is required", var.name)));
            }
            None => {
                out.insert(var.name.clone(), String::new());
            }
        }
    }
    Ok(out)
}

/// Check one value against one variable's rules.
pub fn check_value(var: &TemplateVariable, value: &str) -> Result<()> {
    let fail = |rule: &str, why: String| Err(Error::invalid(format!("variable {}: rule {rule}: {why}", var.name)));
    let rules = &var.rules;
    if rules.required && value.is_empty() {
        return fail("required", "a value is required".into());
    }
    if value.len() > 4096 {
        return fail("max", "values are limited to 4096 bytes".into());
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return fail("string", "control characters are not allowed".into());
    }
    match rules.kind {
        VariableKind::Int => {
            let n: i64 = match value.parse() {
                Ok(n) => n,
                Err(_) => return fail("int", format!("{value:?} is not an integer")),
            };
            if let Some(min) = rules.min
                && n < min
            {
                return fail("min", format!("{n} is below {min}"));
            }
            if let Some(max) = rules.max
                && n > max
            {
                return fail("max", format!("{n} is above {max}"));
            }
        }
        VariableKind::Bool => {
            if value != "true" && value != "false" {
                return fail("bool", format!("{value:?} is not true or false"));
            }
        }
        VariableKind::String => {
            let len = i64::try_from(value.chars().count()).unwrap_or(i64::MAX);
            if let Some(min) = rules.min
                && len < min
            {
                return fail("min", format!("shorter than {min} characters"));
            }
            if let Some(max) = rules.max
                && len > max
            {
                return fail("max", format!("longer than {max} characters"));
            }
        }
    }
    if let Some(re) = &rules.regex {
        let anchored = format!("^(?:{re})$");
        let re = regex::Regex::new(&anchored)
            .map_err(|e| Error::invalid(format!("variable {}: bad regex: {e}", var.name)))?;
        if !re.is_match(value) {
            return fail("regex", format!("{value:?} does not match"));
        }
    }
    if let Some(options) = &rules.one_of
        && !options.iter().any(|o| o == value)
    {
        return fail("one_of", format!("{value:?} is not one of {options:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VariableRules;

    fn var(name: &str, rules: VariableRules) -> TemplateVariable {
        TemplateVariable { name: name.into(), description: String::new(), default: None, user_editable: true, rules }
    }

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

    #[test]
    fn rules_table() {
        let int = VariableRules { kind: VariableKind::Int, min: Some(1), max: Some(10), ..Default::default() };
        let s = VariableRules { min: Some(2), max: Some(4), regex: Some("[a-z]+".into()), ..Default::default() };
        let one = VariableRules { one_of: Some(vec!["a".into(), "b".into()]), ..Default::default() };
        let b = VariableRules { kind: VariableKind::Bool, ..Default::default() };
        let req = VariableRules { required: true, ..Default::default() };
        let cases: &[(&VariableRules, &str, Option<&str>)] = &[
            (&int, "5", None),
            (&int, "0", Some("rule min")),
            (&int, "11", Some("rule max")),
            (&int, "x", Some("rule int")),
            (&s, "abc", None),
            (&s, "a", Some("rule min")),
            (&s, "abcde", Some("rule max")),
            (&s, "AB", Some("rule regex")),
            (&one, "b", None),
            (&one, "c", Some("rule one_of")),
            (&b, "true", None),
            (&b, "yes", Some("rule bool")),
            (&req, "", Some("rule required")),
            (&req, "x\u{7}", Some("rule string")),
        ];
        for (rules, value, want) in cases {
            let got = check_value(&var("V", (*rules).clone()), value).err().map(|e| e.message().to_string());
            match want {
                None => assert!(got.is_none(), "{value:?}: {got:?}"),
                Some(rule) => {
                    let msg = got.unwrap_or_default();
                    assert!(msg.contains(rule) && msg.contains("variable V"), "{value:?}: {msg}");
                }
            }
        }
    }
}
