//! The `properties` parser: Java `.properties` files (`key=value`, `key: value`, `key value`).
//!
//! Unlike Wings (magiconair/properties, which keeps only the head comments), the file is edited
//! in place: comments, blank lines, order and each line's separator are kept; only the edited
//! logical lines (a line ending in an odd number of `\` continues on the next) are rewritten.
//! Every line holding the key is set (Java's last-wins duplicates end up consistent); missing
//! keys are appended as `key=value` in edit order.
//!
//! Values are written escaped as Java does for what matters when reading: `\` as `\\`, line
//! breaks/tab/form feed as `\n` `\r` `\t` `\f`, a leading space as `\ `, other control
//! characters and all non-ASCII as `\uXXXX` (UTF-16, so astral characters become a surrogate
//! pair) — the ASCII-escaped output Wings chose (panel#2308). Keys appended also get `=`, `:`,
//! space, `#` and `!` escaped. Existing values are read unescaped the same way (for
//! `IfValue`).

use super::{EditError, Parser, Replacement, resolve};

/// One logical line.
struct Line {
    /// The original physical text, endings included.
    raw: String,
    /// The parsed key and value, for key lines.
    entry: Option<Entry>,
    /// The ending of the last physical line.
    ending: &'static str,
}

struct Entry {
    lead: String,
    key_raw: String,
    sep: String,
    key: String,
    value: String,
}

/// Applies key edits to a properties file.
pub(super) fn apply(current: Option<&str>, edits: &[Replacement]) -> Result<String, EditError> {
    let text = current.unwrap_or("");
    let mut lines = split_logical(text);
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut appended: Vec<String> = Vec::new();
    for edit in edits {
        if edit.path.is_empty() {
            return Err(EditError::new(Parser::Properties, "empty key"));
        }
        let mut found = false;
        for line in &mut lines {
            let Some(entry) = line.entry.as_mut().filter(|e| e.key == edit.path) else {
                continue;
            };
            found = true;
            if let Some(new) = resolve(Parser::Properties, &edit.value, Some(&entry.value))? {
                let sep = if entry.sep.is_empty() { "=" } else { entry.sep.as_str() };
                line.raw = format!("{}{}{}{}{}", entry.lead, entry.key_raw, sep, escape(&new, false), line.ending);
                entry.value = new;
            }
        }
        if !found && let Some(new) = resolve(Parser::Properties, &edit.value, None)? {
            let raw = format!("{}={}{nl}", escape(&edit.path, true), escape(&new, false));
            lines.push(Line {
                raw,
                entry: Some(Entry {
                    lead: String::new(),
                    key_raw: escape(&edit.path, true),
                    sep: "=".into(),
                    key: edit.path.clone(),
                    value: new,
                }),
                ending: if nl == "\r\n" { "\r\n" } else { "\n" },
            });
            appended.push(edit.path.clone());
        }
    }
    let mut out = String::with_capacity(text.len() + 64);
    for line in &lines {
        if line.entry.as_ref().is_some_and(|e| appended.contains(&e.key)) && !out.is_empty() && !out.ends_with('\n') {
            out.push_str(nl);
        }
        out.push_str(&line.raw);
    }
    Ok(out)
}

fn split_logical(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut physical = text.split_inclusive('\n').peekable();
    while let Some(first) = physical.next() {
        let (content, ending) = split_ending(first);
        let trimmed = content.trim_start_matches([' ', '\t', '\x0c']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            lines.push(Line { raw: first.to_string(), entry: None, ending });
            continue;
        }
        let mut raw = first.to_string();
        let mut joined = String::from(content);
        let mut ending = ending;
        while continues(&joined) {
            joined.pop();
            let Some(next) = physical.next() else { break };
            raw.push_str(next);
            let (c, e) = split_ending(next);
            joined.push_str(c.trim_start_matches([' ', '\t', '\x0c']));
            ending = e;
        }
        let entry = parse_entry(&joined);
        lines.push(Line { raw, entry: Some(entry), ending });
    }
    lines
}

fn split_ending(raw: &str) -> (&str, &'static str) {
    if let Some(s) = raw.strip_suffix("\r\n") {
        (s, "\r\n")
    } else if let Some(s) = raw.strip_suffix('\n') {
        (s, "\n")
    } else {
        (raw, "")
    }
}

/// True when the line ends in an odd number of backslashes.
fn continues(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

fn parse_entry(line: &str) -> Entry {
    let body = line.trim_start_matches([' ', '\t', '\x0c']);
    let lead = &line[..line.len() - body.len()];
    let mut key_end = body.len();
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if matches!(c, '=' | ':' | ' ' | '\t' | '\x0c') {
            key_end = i;
            break;
        }
    }
    let key_raw = &body[..key_end];
    let after = &body[key_end..];
    let mut rest = after.trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    let sep = &after[..after.len() - rest.len()];
    Entry {
        lead: lead.to_string(),
        key_raw: key_raw.to_string(),
        sep: sep.to_string(),
        key: unescape(key_raw),
        value: unescape(rest),
    }
}

/// Java properties unescaping (`\uXXXX`, `\t\n\r\f`, `\x` = `x`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    let mut chars = s.chars().peekable();
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{fffd}')));
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut units, &mut out);
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u16::from_str_radix(&hex, 16) {
                    Ok(unit) if hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        units.push(unit);
                        for _ in 0..4 {
                            chars.next();
                        }
                        continue;
                    }
                    _ => {
                        flush(&mut units, &mut out);
                        out.push('u');
                    }
                }
            }
            Some(other) => {
                flush(&mut units, &mut out);
                out.push(match other {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    'f' => '\x0c',
                    c => c,
                });
            }
            None => flush(&mut units, &mut out),
        }
    }
    flush(&mut units, &mut out);
    out
}

/// Java properties escaping (see the module docs); `key` adds the key-only escapes.
fn escape(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0c' => out.push_str("\\f"),
            ' ' if i == 0 || key => out.push_str("\\ "),
            '=' | ':' | '#' | '!' if key => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn escape_round_trips() {
        let s = " a\\b\nc§😀=:";
        let e = escape(s, false);
        assert_eq!(e, "\\ a\\\\b\\nc\\u00A7\\uD83D\\uDE00=:");
        assert_eq!(unescape(&e), s);
        assert_eq!(escape("a b=c", true), "a\\ b\\=c");
    }

    #[test]
    fn separators_and_continuations() {
        let lines = split_logical("a = 1\nb:2\nc 3\nd=x\\\n   y\n");
        let entries: Vec<_> = lines.iter().filter_map(|l| l.entry.as_ref()).collect();
        let kv: Vec<_> = entries.iter().map(|e| (e.key.as_str(), e.sep.as_str(), e.value.as_str())).collect();
        assert_eq!(kv, [("a", " = ", "1"), ("b", ":", "2"), ("c", " ", "3"), ("d", "=", "xy")]);
    }

    #[test]
    fn bad_unicode_escape_is_literal() {
        assert_eq!(unescape("\\uZZ"), "uZZ");
    }
}
