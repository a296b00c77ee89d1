//! A template's variables: their names, their Laravel rules, and the values servers give them.

use std::collections::{BTreeMap, BTreeSet};

use super::{RenderContext, config_context, render, render_shell};
use crate::model::{StartupMode, Template, TemplateVariable};
use crate::rules::Rules;
use crate::{Error, Result, validate};

/// Values are environment values: bounded, one line of text.
const MAX_VALUE_BYTES: usize = 4096;

/// Check a template's own definition: variable names and rules, defaults, and that every
/// placeholder in its startup commands, environment and config edits names something that exists.
pub fn validate_template(t: &Template, builtins: &[&str]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for v in &t.variables {
        check_variable_name(&v.name)?;
        if !seen.insert(v.name.as_str()) {
            return Err(Error::invalid(format!("variable {} is declared twice", v.name)));
        }
        if builtins.iter().any(|b| b.eq_ignore_ascii_case(&v.name)) {
            return Err(Error::invalid(format!("variable {}: the name is reserved for a built-in value", v.name)));
        }
        // Library paths are legitimate for games (an operator pointing at bundled libraries), never
        // for a customer's value.
        let operator_only = !v.user_editable;
        if is_reserved_env(&v.name) && !(operator_only && v.name.starts_with("LD_")) {
            return Err(Error::invalid(format!(
                "variable {}: the name is reserved (its value would change how programs load or shells \
                 parse); choose another name",
                v.name
            )));
        }
        if v.user_editable && !v.user_viewable {
            return Err(Error::invalid(format!("variable {}: user_editable needs user_viewable", v.name)));
        }
        validate::text(&format!("variable {} label", v.name), &v.label, 191)?;
        validate::text(&format!("variable {} description", v.name), &v.description, 4096)?;
        rules_of(v)?;
        if let Some(default) = v.default.as_deref().filter(|d| !d.is_empty()) {
            check_value(v, default).map_err(|e| Error::invalid(format!("{} (in its default)", e.message())))?;
        }
    }
    let mut ctx = RenderContext::new();
    for name in t.variables.iter().map(|v| v.name.as_str()).chain(builtins.iter().copied()) {
        ctx = ctx.with(name, "");
    }
    let startups = std::iter::once(&t.startup).chain(t.startup_commands.iter().map(|s| &s.command));
    for startup in startups {
        match t.startup_mode {
            StartupMode::Shell => render_shell(startup, &ctx).map(drop)?,
            // The image's entrypoint expands it, an undeclared name to nothing (real eggs rely on
            // that); placeholders must still be well-formed.
            StartupMode::Entrypoint => check_placeholders(startup)?,
        }
    }
    for (key, value) in &t.env {
        check_variable_name(key)?;
        render(value, &ctx)?;
    }
    let config = config_context(&Default::default(), ctx.values());
    for edit in &t.config_files {
        validate::relative_path("config file", &edit.path)?;
        for (key, value) in &edit.set {
            if key.is_empty() || key.contains('\0') {
                return Err(Error::invalid(format!("config file {}: an empty key", edit.path)));
            }
            for text in value.texts() {
                render(text, &config)
                    .map_err(|e| Error::invalid(format!("config file {}: {}", edit.path, e.message())))?;
            }
        }
    }
    Ok(())
}

/// Every `{{` closes and holds a variable name.
fn check_placeholders(text: &str) -> Result<()> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| Error::invalid("startup: unclosed '{{'"))?;
        check_variable_name(after[..end].trim())?;
        rest = &after[end + 2..];
    }
    Ok(())
}

fn rules_of(v: &TemplateVariable) -> Result<Rules> {
    Rules::parse(&v.rules.0).map_err(|e| Error::invalid(format!("variable {}: {e}", v.name)))
}

/// Environment names a customer's value must never set: the dynamic loader's, those that make a
/// shell read a file or re-split words, and those egg images' entrypoints set themselves.
fn is_reserved_env(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "PATH",
        "IFS",
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "CDPATH",
        "HOME",
        "USER",
        "UUID",
        "MODIFIED_STARTUP",
        "INTERNAL_IP",
        "HOSTNAME",
        "TERM",
        "PWD",
    ];
    let upper = name.to_ascii_uppercase();
    NAMES.contains(&upper.as_str()) || upper.starts_with("LD_") || upper.starts_with("BASH_FUNC")
}

/// Names are environment names as eggs write them: a letter or `_`, then letters, digits and
/// `_`, at most 191 characters (Pterodactyl's limit).
pub fn check_variable_name(name: &str) -> Result<()> {
    let ok = (1..=191).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "variable name {name:?} must be letters, digits and '_', starting with a letter or '_', 1-191 characters"
        )))
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
        let value = given.get(&var.name).or(var.default.as_ref()).cloned().unwrap_or_default();
        check_value(var, &value)?;
        out.insert(var.name.clone(), value);
    }
    Ok(out)
}

/// Check one value against one variable's rules.
pub fn check_value(var: &TemplateVariable, value: &str) -> Result<()> {
    let fail = |rule: &str, why: &str| Err(Error::invalid(format!("variable {}: rule {rule}: {why}", var.name)));
    if value.len() > MAX_VALUE_BYTES {
        return fail("max", "values are limited to 4096 bytes");
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return fail("string", "control characters are not allowed");
    }
    rules_of(var)?.check(value).map_err(|e| Error::invalid(format!("variable {}: {e}", var.name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VariableRules;

    fn var(name: &str, rules: &str) -> TemplateVariable {
        TemplateVariable { name: name.into(), rules: VariableRules::parse(rules), ..Default::default() }
    }

    #[test]
    fn values_are_checked_by_their_laravel_rules() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("required|integer|between:1,10", "5", None),
            ("required|integer|between:1,10", "0", Some("rule between")),
            ("required|integer|between:1,10", "x", Some("rule integer")),
            ("required|string|max:4", "abcde", Some("rule max")),
            ("required|string|in:a,b", "c", Some("rule in")),
            ("required|string", "", Some("rule required")),
            ("nullable|string", "", None),
            ("required|string", "x\u{7}", Some("rule string")),
        ];
        for (rules, value, want) in cases {
            let got = check_value(&var("V", rules), value).err().map(|e| e.message().to_string());
            match want {
                None => assert!(got.is_none(), "{rules} {value:?}: {got:?}"),
                Some(rule) => {
                    let msg = got.unwrap_or_default();
                    assert!(msg.contains(rule) && msg.contains("variable V"), "{rules} {value:?}: {msg}");
                }
            }
        }
    }

    #[test]
    fn legacy_rule_objects_still_load() {
        let old: TemplateVariable = serde_json::from_value(
            serde_json::json!({"name": "SLOTS", "rules": {"kind": "int", "min": 1, "max": 100}}),
        )
        .expect("legacy rules");
        assert_eq!(old.rules.0, ["nullable", "integer", "min:1", "max:100"]);
        assert!(check_value(&old, "50").is_ok());
        assert!(check_value(&old, "500").is_err());
        let re: TemplateVariable = serde_json::from_value(
            serde_json::json!({"name": "V", "rules": {"required": true, "regex": "[a-z]+", "one_of": ["ab", "c,d"]}}),
        )
        .expect("legacy rules");
        assert!(check_value(&re, "ab").is_ok());
        assert!(check_value(&re, "c,d").is_err(), "the regex still matches the whole value");
        assert!(check_value(&re, "AB").is_err());
    }

    #[test]
    fn names_follow_eggs() {
        for ok in ["SERVER_JARFILE", "maxplayers", "_X", "Version"] {
            assert!(check_variable_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1X", "A-B", "A B", &"A".repeat(192)] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
    }
}
