//! A template's `file_denylist`: gitignore-style globs (what Wings uses) that the file manager
//! and SFTP refuse, matched against paths relative to the server's root.
//!
//! A pattern without a `/` matches a name at any depth; one with a `/` (or a leading one) is
//! anchored at the root; `*` and `?` stay within one name, `**` crosses directories; `!`
//! re-allows; a matched directory denies everything under it. Blank lines and `#` comments are
//! skipped.

use regex::Regex;

use crate::{Error, Result};

/// Compiled denylist patterns.
#[derive(Debug, Clone, Default)]
pub struct Denylist {
    rules: Vec<(bool, Regex)>,
}

impl Denylist {
    /// Compile `patterns`; a malformed one (an unclosed `[`) is an error naming it.
    pub fn new(patterns: &[String]) -> Result<Self> {
        let mut rules = Vec::new();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            if p.len() > 255 {
                return Err(Error::invalid("file_denylist: patterns are at most 255 characters"));
            }
            let (allow, glob) = match p.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, p),
            };
            let re = Regex::new(
                &to_regex(glob.trim_end_matches('/'))
                    .map_err(|why| Error::invalid(format!("file_denylist: pattern {p:?}: {why}")))?,
            )
            .map_err(|e| Error::invalid(format!("file_denylist: pattern {p:?}: {e}")))?;
            rules.push((allow, re));
        }
        Ok(Self { rules })
    }

    /// No patterns at all?
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Is `path` (relative to the root, `/`-separated) denied? The last matching pattern decides.
    pub fn denies(&self, path: &str) -> bool {
        let path = path.trim_start_matches("./").trim_matches('/');
        if path.is_empty() {
            return false;
        }
        let mut denied = false;
        for (allow, re) in &self.rules {
            if re.is_match(path) {
                denied = !allow;
            }
        }
        denied
    }
}

fn to_regex(glob: &str) -> std::result::Result<String, &'static str> {
    let anchored = glob.starts_with('/') || glob.trim_start_matches('/').contains('/');
    let glob = glob.trim_start_matches('/');
    if glob.is_empty() {
        return Err("empty pattern");
    }
    let mut out = String::from(if anchored { "^" } else { "^(?:.*/)?" });
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let slash_after = chars.get(i + 2) == Some(&'/');
                out.push_str(if slash_after { "(?:.*/)?" } else { ".*" });
                i += if slash_after { 3 } else { 2 };
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                let end = chars[i + 1..].iter().position(|&c| c == ']').ok_or("unclosed '['")? + i + 1;
                let mut class: String = chars[i + 1..end].iter().collect();
                if let Some(rest) = class.strip_prefix('!') {
                    class = format!("^{rest}");
                }
                out.push('[');
                out.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                out.push(']');
                i = end;
            }
            '\\' if i + 1 < chars.len() => {
                out.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 1;
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    // A matched directory takes everything below it.
    out.push_str("(?:/.*)?$");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> Denylist {
        Denylist::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("compiles")
    }

    #[test]
    fn gitignore_semantics() {
        let d = list(&["*.jar", "/config/secret.yml", "logs/", "**/cache/**", "!keep.jar", "# comment", ""]);
        for denied in
            ["server.jar", "plugins/x.jar", "config/secret.yml", "logs", "logs/latest.log", "a/cache/b", "./server.jar"]
        {
            assert!(d.denies(denied), "{denied}");
        }
        for allowed in ["keep.jar", "server.properties", "other/config/secret.yml", "jar", "mylogs/x", ""] {
            assert!(!d.denies(allowed), "{allowed}");
        }
        let q = list(&["file?.txt", "[ab].cfg", "[!c].ini"]);
        assert!(q.denies("file1.txt") && !q.denies("file12.txt"));
        assert!(q.denies("a.cfg") && !q.denies("c.cfg"));
        assert!(q.denies("d.ini") && !q.denies("c.ini"));
        assert!(Denylist::new(&["[oops".to_string()]).is_err());
    }
}
