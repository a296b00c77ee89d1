//! Validation of egg variable values against Laravel validation rules.
//!
//! Pterodactyl (PTDL) eggs store a variable's rules as one string such as
//! `required|string|max:20`; Pelican (PLCN) eggs store a list of single rules.
//! [`split`] turns the string form into the list form, [`Rules::parse`] turns
//! the list into checked rules (unknown keywords and bad parameters are
//! errors, never silently ignored), and [`Rules::check`] validates one
//! environment value the way Laravel's validator would.

use std::fmt;

mod check;
mod formats;
mod parse;
mod regex_php;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// One rule failed, or a rule could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule keyword as written in the egg (e.g. `max`, `foo_bar`).
    pub rule: String,
    /// What went wrong, naming the offending value or parameter.
    pub message: String,
}

impl RuleError {
    fn new(rule: impl Into<String>, message: impl Into<String>) -> Self {
        RuleError { rule: rule.into(), message: message.into() }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}: {}", self.rule, self.message)
    }
}

impl std::error::Error for RuleError {}

/// Parsed rules of one variable (all must hold).
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<parse::Parsed>,
    /// Any of integer/numeric/gt/gte/lt/lte present: sizes of numeric values
    /// are compared as numbers, not as string lengths (Laravel `getSize`).
    numeric_sizes: bool,
}

impl Rules {
    /// Parse a list of rule strings, each one rule like "max:20" or "regex:/^a|b$/" (PLCN form).
    /// An unknown keyword is an error naming it — never ignored. Bad parameters (max:abc,
    /// between:1, invalid regex, bad delimiters) are errors too.
    pub fn parse(rules: &[String]) -> Result<Rules, RuleError> {
        let mut parsed = Vec::with_capacity(rules.len());
        for raw in rules {
            // Empty list entries carry no rule; Laravel ignores them as well.
            if raw.trim().is_empty() {
                continue;
            }
            parsed.push(parse::parse_one(raw)?);
        }
        let numeric_sizes = parsed.iter().any(|p| p.rule.makes_sizes_numeric());
        Ok(Rules { rules: parsed, numeric_sizes })
    }

    /// Is `required` among them?
    pub fn required(&self) -> bool {
        self.rules.iter().any(|p| matches!(p.rule, parse::Rule::Required))
    }

    /// Is `nullable` among them?
    pub fn nullable(&self) -> bool {
        self.rules.iter().any(|p| matches!(p.rule, parse::Rule::Nullable))
    }

    /// Check a value. Values are strings (environment values). Empty string = absent/null.
    ///
    /// Rules are checked in order and the first failure is returned (so `bail`
    /// is implied). A value that is empty after PHP `trim` runs only Laravel's
    /// implicit rules (`required`, `filled`, `accepted`, `declined`); every
    /// other rule is skipped, exactly as Laravel's `presentOrRuleIsImplicit`.
    pub fn check(&self, value: &str) -> Result<(), RuleError> {
        let empty = check::php_trim(value).is_empty();
        for p in &self.rules {
            if empty && !p.rule.is_implicit() {
                continue;
            }
            check::check_one(p, value, self.numeric_sizes)
                .map_err(|message| RuleError::new(p.name.clone(), message))?;
        }
        Ok(())
    }
}

/// Split a PTDL rule string "a|b:1,2|regex:/x|y/" into single rules the way Laravel does: a
/// `regex:`/`not_regex:` rule keeps `|` inside its pattern (Laravel/Blesta extract regexes before
/// splitting on `|`). Empty segments dropped, whitespace trimmed.
pub fn split(rules: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = rules;
    while !rest.is_empty() {
        let end = segment_end(rest);
        let seg = rest[..end].trim();
        if !seg.is_empty() {
            out.push(seg.to_string());
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    out
}

/// Byte index of the `|` ending the first segment of `s` (or `s.len()`).
fn segment_end(s: &str) -> usize {
    let plain = s.find('|').unwrap_or(s.len());
    let trimmed = s.trim_start();
    let lead = s.len() - trimmed.len();
    let Some((kw, param)) = trimmed.split_once(':') else {
        return plain;
    };
    // Only a regex rule may contain `|`, and only if its colon comes before
    // the first pipe (otherwise the pipe ends an earlier, different rule).
    if kw.len() + lead > plain || !parse::is_regex_keyword(kw) {
        return plain;
    }
    let param_start = lead + kw.len() + 1;
    match regex_php::pattern_end(param) {
        // The pattern ends at its closing delimiter; flags run to the next `|`.
        Some(close) => {
            let after = param_start + close;
            after + s[after..].find('|').unwrap_or(s.len() - after)
        }
        // Unterminated pattern: fall back to a plain split; parse reports it.
        None => plain,
    }
}
