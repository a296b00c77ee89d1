//! The `ini` parser, written by hand so the file is edited in place.
//!
//! A match is `key` (the global part before any section), `section.key` (split at the first
//! `.`; further dots belong to the key, as in Wings), or `[section].key` where the bracketed
//! name is taken literally, dots included (`[/Script/Dominion.DedicatedServerSettings].OwnerId`).
//! Unlike Wings, brackets elsewhere in the match are kept literally (Wings drops every `[`/`]`).
//!
//! Lines: `[name]` starts a section (names are case-sensitive; the first section of a name is
//! used), `;`/`#` lines are comments, a key line is `key=value` or `key: value` split at the
//! first `=` or `:`. An existing key (its first occurrence in the section) keeps its line's
//! spacing and only the value is replaced. A missing key is added after the last non-blank line
//! of its section, copying the section's (else the file's, else ` = `) separator; a missing
//! section is appended at the end after a blank line. Line endings (`\r\n` or `\n`) follow the
//! file. `IfValue` compares the value with surrounding whitespace trimmed.

use super::{EditError, Parser, Replacement, resolve};

struct Line {
    content: String,
    ending: String,
}

enum Kind<'a> {
    Section(&'a str),
    Key { key: &'a str, sep: &'a str, value_at: usize },
    Other,
}

fn classify(content: &str) -> Kind<'_> {
    let t = content.trim();
    if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
        return Kind::Other;
    }
    if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Kind::Section(name.trim());
    }
    let Some(delim) = content.find(['=', ':']) else {
        return Kind::Other;
    };
    let before = &content[..delim];
    let key = before.trim();
    let key_end = before.trim_end().len();
    let after = &content[delim + 1..];
    let value_at = delim + 1 + (after.len() - after.trim_start().len());
    Kind::Key { key, sep: &content[key_end..value_at], value_at }
}

/// Splits a match into (section, key); section `""` is the global part.
fn split_match(path: &str) -> Result<(&str, &str), EditError> {
    let bad = |why: &str| EditError::new(Parser::Ini, format!("invalid match `{path}`: {why}"));
    let (section, key) = if let Some(rest) = path.strip_prefix('[') {
        let mut depth = 1usize;
        let close = rest.char_indices().find_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i)
        });
        let Some(close) = close else {
            return Err(bad("unterminated `[`"));
        };
        let Some(key) = rest[close + 1..].strip_prefix('.') else {
            return Err(bad("expected `.key` after `[section]`"));
        };
        (&rest[..close], key)
    } else {
        match path.split_once('.') {
            Some((s, k)) => (s, k),
            None => ("", path),
        }
    };
    if key.is_empty() {
        return Err(bad("empty key"));
    }
    Ok((section, key))
}

/// Applies section/key edits to an ini file.
pub(super) fn apply(current: Option<&str>, edits: &[Replacement]) -> Result<String, EditError> {
    let text = current.unwrap_or("");
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<Line> = text
        .split_inclusive('\n')
        .map(|raw| {
            let content = raw.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(raw);
            Line { content: content.to_string(), ending: raw[content.len()..].to_string() }
        })
        .collect();
    for edit in edits {
        let (section, key) = split_match(&edit.path)?;
        edit_one(&mut lines, section, key, edit, nl)?;
    }
    Ok(lines.iter().flat_map(|l| [l.content.as_str(), l.ending.as_str()]).collect())
}

fn edit_one(lines: &mut Vec<Line>, section: &str, key: &str, edit: &Replacement, nl: &str) -> Result<(), EditError> {
    // The section's line range: (header index if any, first line, end exclusive).
    let range = if section.is_empty() {
        let end = lines.iter().position(|l| matches!(classify(&l.content), Kind::Section(_))).unwrap_or(lines.len());
        Some((0, end))
    } else {
        lines.iter().position(|l| matches!(classify(&l.content), Kind::Section(s) if s == section)).map(|h| {
            let end = lines[h + 1..]
                .iter()
                .position(|l| matches!(classify(&l.content), Kind::Section(_)))
                .map_or(lines.len(), |p| h + 1 + p);
            (h + 1, end)
        })
    };
    let file_sep = lines.iter().find_map(|l| match classify(&l.content) {
        Kind::Key { sep, .. } => Some(sep.to_string()),
        _ => None,
    });
    let Some((start, end)) = range else {
        let Some(new) = resolve(Parser::Ini, &edit.value, None)? else {
            return Ok(());
        };
        if let Some(last) = lines.last_mut() {
            if last.ending.is_empty() {
                last.ending = nl.to_string();
            }
            if !last.content.trim().is_empty() {
                lines.push(Line { content: String::new(), ending: nl.to_string() });
            }
        }
        let sep = file_sep.unwrap_or_else(|| " = ".to_string());
        for content in [format!("[{section}]"), format!("{key}{sep}{new}")] {
            lines.push(Line { content, ending: nl.to_string() });
        }
        return Ok(());
    };
    let mut section_sep = None;
    for line in &mut lines[start..end] {
        if let Kind::Key { key: k, sep, value_at } = classify(&line.content) {
            if k != key {
                section_sep.get_or_insert_with(|| sep.to_string());
                continue;
            }
            if let Some(new) = resolve(Parser::Ini, &edit.value, Some(line.content[value_at..].trim()))? {
                line.content.truncate(value_at);
                line.content.push_str(&new);
            }
            return Ok(());
        }
    }
    let Some(new) = resolve(Parser::Ini, &edit.value, None)? else {
        return Ok(());
    };
    let sep = section_sep.or(file_sep).unwrap_or_else(|| " = ".to_string());
    let at = (start..end).rev().find(|&i| !lines[i].content.trim().is_empty()).map_or(start, |i| i + 1);
    // Appending after an unterminated last line: it gets the newline, the new line goes without.
    let mut ending = nl;
    if at > 0 && lines[at - 1].ending.is_empty() {
        lines[at - 1].ending = nl.to_string();
        ending = "";
    }
    lines.insert(at, Line { content: format!("{key}{sep}{new}"), ending: ending.to_string() });
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn splits_matches() {
        assert_eq!(split_match("GAMEPLAY.max_players").unwrap(), ("GAMEPLAY", "max_players"));
        assert_eq!(split_match("port").unwrap(), ("", "port"));
        assert_eq!(split_match("a.b.c").unwrap(), ("a", "b.c"));
        assert_eq!(
            split_match("[/Script/Dominion.DedicatedServerSettings].OwnerId").unwrap(),
            ("/Script/Dominion.DedicatedServerSettings", "OwnerId")
        );
        assert!(split_match("[a.b").is_err());
        assert!(split_match("[a]b").is_err());
        assert!(split_match("a.").is_err());
    }

    #[test]
    fn key_lines_keep_their_spacing() {
        match classify("  name =  x y ") {
            Kind::Key { key, sep, value_at } => {
                assert_eq!((key, sep, value_at), ("name", " =  ", 10));
            }
            _ => panic!("not a key line"),
        }
    }
}
