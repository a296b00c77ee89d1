//! The `file` parser: every line that starts with a match is replaced whole by its value.
//!
//! As Wings, nothing is appended when no line matches and a missing file is created empty.
//! Unlike Wings, only the first matching replacement is used for a line (Wings writes all of
//! them, one after another, on the same line), and each line keeps its own ending (`\n` or
//! `\r\n`) and the file keeps (or lacks) its final newline. `IfValue` compares the
//! whole line (without its ending).

use super::{EditError, Parser, Replacement, resolve};

/// Applies line-prefix replacements to `current`.
pub(super) fn apply(current: Option<&str>, edits: &[Replacement]) -> Result<String, EditError> {
    if let Some(e) = edits.iter().find(|e| e.path.is_empty()) {
        return Err(EditError::new(Parser::File, format!("empty match (would replace every line with {:?})", e.value)));
    }
    let text = current.unwrap_or("");
    let mut out = String::with_capacity(text.len());
    for raw in text.split_inclusive('\n') {
        let (line, ending) = split_ending(raw);
        let mut replaced = None;
        for edit in edits.iter().filter(|e| line.starts_with(e.path.as_str())) {
            if let Some(new) = resolve(Parser::File, &edit.value, Some(line))? {
                replaced = Some(new);
                break;
            }
        }
        out.push_str(replaced.as_deref().unwrap_or(line));
        out.push_str(ending);
    }
    Ok(out)
}

/// Splits a line (as produced by `split_inclusive('\n')`) into its text and its ending.
fn split_ending(raw: &str) -> (&str, &str) {
    if let Some(s) = raw.strip_suffix("\r\n") {
        (s, "\r\n")
    } else if let Some(s) = raw.strip_suffix('\n') {
        (s, "\n")
    } else {
        (raw, "")
    }
}

#[cfg(test)]
mod unit {
    use super::super::Value;
    use super::*;

    fn always(path: &str, v: &str) -> Replacement {
        Replacement { path: path.into(), value: Value::Always(v.into()) }
    }

    #[test]
    fn keeps_crlf_and_missing_final_newline() {
        let out = apply(Some("a 1\r\nb 2\r\nc 3"), &[always("b ", "b 9"), always("c", "c 8")]).unwrap();
        assert_eq!(out, "a 1\r\nb 9\r\nc 8");
    }

    #[test]
    fn first_matching_edit_wins() {
        let out = apply(Some("port 1\n"), &[always("port", "port 2"), always("po", "x")]).unwrap();
        assert_eq!(out, "port 2\n");
    }

    #[test]
    fn empty_match_is_refused() {
        assert!(apply(Some("x\n"), &[always("", "y")]).is_err());
    }
}
