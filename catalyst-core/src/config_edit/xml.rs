//! The `xml` parser: edits spliced into the original text, so everything else (the XML
//! declaration, comments, formatting, entity references) stays byte for byte.
//!
//! A match `Root.A.B` is the element path `./Root/A/B` of the document, as Wings (etree
//! `FindElements`): the first segment names the root element (a different root is an error), a
//! `*` segment matches any child element. Every matching element is set; when none matches
//! (and the path has no `*`), the missing elements are created along the first matching chain,
//! indented like their siblings. A missing or rootless file gets
//! `<?xml version="1.0" encoding="utf-8"?>` (if it has no declaration) and the root element.
//!
//! A value of the form `[name='value']` (Wings' `^\[(\w+)='(.*)'\]$`) sets attribute `name`
//! (replaced in place if present, else appended to the start tag); any other value replaces the
//! element's text (escaped). Setting the text of an element that has child elements is an
//! error (Wings' etree would leave children and text interleaved). `IfValue` compares
//! the element's unescaped text and skips elements with markup inside. DTD entities are never
//! expanded (quick-xml does not), so there is no entity bomb.

use std::sync::LazyLock;

use quick_xml::Reader;
use quick_xml::escape::{escape, partial_escape, unescape};
use quick_xml::events::Event;
use regex::Regex;

use super::{EditError, Parser, Replacement, resolve};

static ATTR_VALUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\[(\w+)='(.*)'\]$").expect("valid regex"));

const INDENT: &str = "  ";

/// One element, by byte offsets into the text.
#[derive(Debug)]
struct Elem {
    name: String,
    /// `<` of the start tag.
    start: usize,
    /// Just after the start tag's `>`.
    start_end: usize,
    /// Self-closing (`<a/>`).
    empty: bool,
    /// `<` of the end tag (= `start_end` when empty).
    end_start: usize,
    children: Vec<usize>,
}

fn err(why: impl std::fmt::Display) -> EditError {
    EditError::new(Parser::Xml, why)
}

/// Parses `text` into its elements; index 0 is the root (if any).
fn parse(text: &str) -> Result<Vec<Elem>, EditError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut elems: Vec<Elem> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        let pos = reader.buffer_position() as usize;
        let event =
            reader.read_event().map_err(|e| err(format!("malformed XML at byte {}: {e}", reader.error_position())))?;
        let end = reader.buffer_position() as usize;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = text[..end].ends_with("/>");
                if stack.is_empty() && !elems.is_empty() {
                    return Err(err(format!("malformed XML at byte {pos}: more than one root element")));
                }
                let idx = elems.len();
                elems.push(Elem {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    start: pos,
                    start_end: end,
                    empty,
                    end_start: end,
                    children: Vec::new(),
                });
                if let Some(&parent) = stack.last() {
                    elems[parent].children.push(idx);
                }
                if !empty {
                    stack.push(idx);
                }
            }
            Event::End(_) => {
                let Some(idx) = stack.pop() else {
                    return Err(err(format!("malformed XML at byte {pos}: unmatched end tag")));
                };
                elems[idx].end_start = pos;
            }
            Event::Text(t) if stack.is_empty() && !t.as_ref().iter().all(u8::is_ascii_whitespace) => {
                return Err(err(format!("malformed XML at byte {pos}: text outside the root element")));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(&open) = stack.last() {
        return Err(err(format!("malformed XML: element <{}> is never closed", elems[open].name)));
    }
    Ok(elems)
}

/// Applies element-path edits to an XML document.
pub(super) fn apply(current: Option<&str>, edits: &[Replacement]) -> Result<String, EditError> {
    let raw = current.unwrap_or("");
    let (bom, body) = match raw.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", raw),
    };
    let mut text = body.to_string();
    let mut elems = parse(&text)?;
    for edit in edits {
        let segs: Vec<&str> = edit.path.split('.').collect();
        if segs.iter().any(|s| s.is_empty()) {
            return Err(err(format!("invalid path `{}`: empty segment", edit.path)));
        }
        if elems.is_empty() {
            if !text.trim_start().starts_with("<?xml") {
                text.insert_str(0, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
            }
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            let root = if segs[0] == "*" { "root" } else { segs[0] };
            text.push_str(&format!("<{root}></{root}>\n"));
            elems = parse(&text)?;
        }
        if segs[0] != "*" && segs[0] != elems[0].name {
            return Err(err(format!(
                "path `{}` starts at <{}> but the root element is <{}>",
                edit.path, segs[0], elems[0].name
            )));
        }
        let mut found = find(&elems, &segs);
        if found.is_empty() && !segs.contains(&"*") && resolve(Parser::Xml, &edit.value, None)?.is_some() {
            create(&mut text, &mut elems, &segs)?;
            found = find(&elems, &segs);
        }
        // Splice from the end of the text backwards so earlier offsets stay valid.
        found.sort_by_key(|&i| std::cmp::Reverse(elems[i].start));
        for idx in found {
            let el = &elems[idx];
            let current = current_text(&text, el);
            if current.is_none() && !matches!(edit.value, super::Value::Always(_)) {
                continue;
            }
            let Some(new) = resolve(Parser::Xml, &edit.value, current.as_deref())? else {
                continue;
            };
            set(&mut text, el, &new, &edit.path)?;
        }
        elems = parse(&text)?;
    }
    Ok(format!("{bom}{text}"))
}

/// The elements matching `segs` (the first segment is the root, already checked).
fn find(elems: &[Elem], segs: &[&str]) -> Vec<usize> {
    let mut level = vec![0usize];
    for seg in &segs[1..] {
        level = level
            .iter()
            .flat_map(|&p| elems[p].children.iter().copied())
            .filter(|&c| *seg == "*" || elems[c].name == *seg)
            .collect();
    }
    level
}

/// Creates the missing elements of `segs` along the first matching chain.
fn create(text: &mut String, elems: &mut Vec<Elem>, segs: &[&str]) -> Result<(), EditError> {
    let mut at = 0usize;
    for (depth, seg) in segs.iter().enumerate().skip(1) {
        if let Some(&c) = elems[at].children.iter().find(|&&c| elems[c].name == *seg) {
            at = c;
            continue;
        }
        insert_child(text, elems, at, &format!("<{seg}></{seg}>"));
        *elems = parse(text)?;
        let chain = find(elems, &segs[..=depth]);
        at = *chain.first().ok_or_else(|| err("internal error: created element not found"))?;
    }
    Ok(())
}

/// Indentation of the line holding byte `at`, when only whitespace precedes it on that line.
fn line_indent(text: &str, at: usize) -> Option<&str> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..at];
    before.chars().all(|c| c == ' ' || c == '\t').then_some(before)
}

fn insert_child(text: &mut String, elems: &[Elem], parent: usize, fragment: &str) {
    let parent = &elems[parent];
    let pi = line_indent(text, parent.start).unwrap_or("").to_string();
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let ci = parent
        .children
        .first()
        .and_then(|&c| line_indent(text, elems[c].start))
        .map_or_else(|| format!("{pi}{INDENT}"), str::to_string);
    if parent.empty {
        let tag = text[parent.start..parent.start_end - 2].trim_end().to_string();
        let name = &parent.name;
        text.replace_range(parent.start..parent.start_end, &format!("{tag}>{nl}{ci}{fragment}{nl}{pi}</{name}>"));
        return;
    }
    let content = &text[parent.start_end..parent.end_start];
    let ws = content.len() - content.trim_end().len();
    if content.is_empty() {
        text.insert_str(parent.end_start, &format!("{nl}{ci}{fragment}{nl}{pi}"));
    } else if content[content.len() - ws..].contains('\n') {
        text.insert_str(parent.end_start - ws, &format!("{nl}{ci}{fragment}"));
    } else {
        text.insert_str(parent.end_start, fragment);
    }
}

/// The element's unescaped text, `None` when it holds markup.
fn current_text(text: &str, el: &Elem) -> Option<String> {
    if el.empty {
        return Some(String::new());
    }
    let content = &text[el.start_end..el.end_start];
    if content.contains('<') {
        return None;
    }
    unescape(content).ok().map(|c| c.into_owned())
}

fn set(text: &mut String, el: &Elem, new: &str, path: &str) -> Result<(), EditError> {
    if let Some(caps) = ATTR_VALUE.captures(new) {
        let (name, value) = (&caps[1], &caps[2]);
        let tag = &text[el.start..el.start_end];
        match attr_span(tag, name) {
            Some((from, to)) => text.replace_range(el.start + from..el.start + to, &escape(value)),
            None => {
                let close = if el.empty { 2 } else { 1 };
                let at = el.start + tag[..tag.len() - close].trim_end().len();
                text.insert_str(at, &format!(" {name}=\"{}\"", escape(value)));
            }
        }
        return Ok(());
    }
    if !el.children.is_empty() {
        return Err(err(format!("path `{path}`: <{}> has child elements, not setting its text", el.name)));
    }
    let escaped = partial_escape(new);
    if el.empty {
        let tag = text[el.start..el.start_end - 2].trim_end().to_string();
        text.replace_range(el.start..el.start_end, &format!("{tag}>{escaped}</{}>", el.name));
    } else {
        text.replace_range(el.start_end..el.end_start, &escaped);
    }
    Ok(())
}

/// Byte span of attribute `name`'s value (inside the quotes) in a start tag.
fn attr_span(tag: &str, name: &str) -> Option<(usize, usize)> {
    let b = tag.as_bytes();
    let is_ws = |c: u8| c.is_ascii_whitespace();
    let mut i = 1;
    while i < b.len() && !is_ws(b[i]) && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    loop {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] == b'/' || b[i] == b'>' {
            return None;
        }
        let name_start = i;
        while i < b.len() && !is_ws(b[i]) && b[i] != b'=' && b[i] != b'/' && b[i] != b'>' {
            i += 1;
        }
        let attr = &tag[name_start..i];
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        let quote = *b.get(i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let value_start = i + 1;
        let value_end = value_start + tag[value_start..].find(quote as char)?;
        if attr == name {
            return Some((value_start, value_end));
        }
        i = value_end + 1;
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn attribute_spans() {
        let tag = r#"<Port value="1" other = '2' flag/>"#;
        assert_eq!(attr_span(tag, "value"), Some((13, 14)));
        assert_eq!(attr_span(tag, "other"), Some((25, 26)));
        assert_eq!(attr_span(tag, "missing"), None);
    }

    #[test]
    fn children_of_self_closing_and_inline_parents() {
        let edit =
            |path: &str, v: &str| Replacement { path: path.into(), value: super::super::Value::Always(v.into()) };
        let out = apply(Some("  <a x=\"1\" />"), &[edit("a.b", "1")]).unwrap();
        assert_eq!(out, "  <a x=\"1\">\n    <b>1</b>\n  </a>");
        let out = apply(Some("<a><c/></a>"), &[edit("a.b", "2")]).unwrap();
        assert_eq!(out, "<a><c/><b>2</b></a>");
    }

    #[test]
    fn malformed_documents() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a/>text").is_err());
    }
}
