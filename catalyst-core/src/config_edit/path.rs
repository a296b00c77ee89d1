//! The dotted-path engine shared by the `json` and `yaml` parsers.
//!
//! Both documents are held as a [`serde_norway::Value`] (whose mappings keep insertion order).
//!
//! Path syntax: segments separated by `.`; a segment is a key, `*` (every member of a mapping /
//! element of a sequence at that level; any number of wildcards is allowed, Wings allows one),
//! or a key followed by one or more `[N]` sequence indexes (`listeners[0].host`, `[0]` alone
//! indexes the current node).
//!
//! Setting (`Always`):
//! - missing mapping members and `null` nodes along the path are created as mappings (or as
//!   sequences before an index);
//! - an index equal to the sequence length appends one element (so a missing `a[0]` is created,
//!   as Wings does); a larger index is an error;
//! - nothing is created below a wildcard's parent when that parent is missing, and members of a
//!   wildcard that are not containers are skipped (as Wings skips not-found children);
//! - a path that runs into a scalar outside a wildcard is an error.
//!
//! `IfValue` never creates anything: it only looks at existing scalars, compared as
//! strings (`null` compares as `null`).
//!
//! Typing of the new value: a canonical integer (`-?(0|[1-9][0-9]*)` fitting in an `i64`)
//! becomes a number, like Wings' `strconv.Atoi`; `true`/`false` becomes a bool and a float
//! literal becomes a number only when the value being replaced already is a bool / a float;
//! everything else (including `""`) is a string.

use serde_norway::{Mapping, Number, Value as Node};

use super::{EditError, Parser, Replacement, Value, resolve};

/// One path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
    /// Every member / element.
    Any,
}

/// Parses a dotted path.
pub(super) fn parse(parser: Parser, path: &str) -> Result<Vec<Seg>, EditError> {
    let bad = |why: &str| EditError::new(parser, format!("invalid path `{path}`: {why}"));
    if path.is_empty() {
        return Err(bad("empty"));
    }
    let mut segs = Vec::new();
    for part in path.split('.') {
        if part == "*" {
            segs.push(Seg::Any);
            continue;
        }
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && rest.is_empty() {
            return Err(bad("empty segment"));
        }
        if !name.is_empty() {
            segs.push(Seg::Key(name.to_string()));
        }
        while !rest.is_empty() {
            let inner = rest.strip_prefix('[').and_then(|r| r.find(']').map(|j| (&r[..j], &r[j + 1..])));
            let Some((digits, after)) = inner else {
                return Err(bad("unterminated `[`"));
            };
            let index = digits.parse::<usize>().map_err(|_| bad("an index must be a non-negative integer"))?;
            segs.push(Seg::Index(index));
            rest = after;
        }
    }
    Ok(segs)
}

/// Applies every edit to `root`, in order.
pub(super) fn apply_all(parser: Parser, root: &mut Node, edits: &[Replacement]) -> Result<(), EditError> {
    for edit in edits {
        let segs = parse(parser, &edit.path)?;
        let mut ctx = Ctx { parser, path: &edit.path, value: &edit.value };
        ctx.set(root, &segs, true)?;
    }
    Ok(())
}

struct Ctx<'a> {
    parser: Parser,
    path: &'a str,
    value: &'a Value,
}

impl Ctx<'_> {
    fn err(&self, why: &str) -> EditError {
        EditError::new(self.parser, format!("path `{}`: {why}", self.path))
    }

    /// Sets the remaining `segs` below `node`; `strict` is false below a wildcard.
    fn set(&mut self, node: &mut Node, segs: &[Seg], strict: bool) -> Result<(), EditError> {
        let Some((seg, rest)) = segs.split_first() else {
            let current = scalar_string(node);
            if current.is_none() && matches!(self.value, Value::IfValue(_)) {
                return Ok(());
            }
            if let Some(new) = resolve(self.parser, self.value, current.as_deref())? {
                *node = typed(&new, node);
            }
            return Ok(());
        };
        let may_create = matches!(self.value, Value::Always(_)) && !rest.contains(&Seg::Any);
        match seg {
            Seg::Key(key) => {
                if node.is_null() && may_create {
                    *node = Node::Mapping(Mapping::new());
                }
                let Node::Mapping(map) = node else {
                    return self.mismatch(node, strict, "a mapping");
                };
                if let Some(child) = map.iter_mut().find(|(k, _)| key_matches(k, key)).map(|(_, v)| v) {
                    return self.set(child, rest, strict);
                }
                if may_create {
                    let mut child = Node::Null;
                    self.set(&mut child, rest, strict)?;
                    map.insert(Node::String(key.clone()), child);
                }
                Ok(())
            }
            Seg::Index(i) => {
                if node.is_null() && may_create {
                    *node = Node::Sequence(Vec::new());
                }
                let Node::Sequence(seq) = node else {
                    return self.mismatch(node, strict, "a sequence");
                };
                if *i < seq.len() {
                    return self.set(&mut seq[*i], rest, strict);
                }
                if !may_create {
                    return Ok(());
                }
                if *i > seq.len() {
                    return Err(self.err(&format!(
                        "index {i} is past the end of a sequence of {} (only appending one is allowed)",
                        seq.len()
                    )));
                }
                let mut child = Node::Null;
                self.set(&mut child, rest, strict)?;
                seq.push(child);
                Ok(())
            }
            Seg::Any => {
                match node {
                    Node::Mapping(map) => {
                        for (_, child) in map.iter_mut() {
                            self.set(child, rest, false)?;
                        }
                    }
                    Node::Sequence(seq) => {
                        for child in seq.iter_mut() {
                            self.set(child, rest, false)?;
                        }
                    }
                    _ => {}
                }
                Ok(())
            }
        }
    }

    fn mismatch(&self, node: &Node, strict: bool, wanted: &str) -> Result<(), EditError> {
        if !strict || (node.is_null() && matches!(self.value, Value::IfValue(_))) {
            return Ok(());
        }
        Err(self.err(&format!("expected {wanted}, found {}", kind(node))))
    }
}

fn kind(node: &Node) -> &'static str {
    match node {
        Node::Null => "null",
        Node::Bool(_) => "a bool",
        Node::Number(_) => "a number",
        Node::String(_) => "a string",
        Node::Sequence(_) => "a sequence",
        Node::Mapping(_) => "a mapping",
        Node::Tagged(_) => "a tagged value",
    }
}

/// A mapping key equals a path segment when its scalar text does (so `8080` matches a number key).
fn key_matches(key: &Node, seg: &str) -> bool {
    match key {
        Node::String(s) => s == seg,
        other => scalar_string(other).is_some_and(|s| s == seg),
    }
}

/// The string form of a scalar, `None` for containers.
pub(super) fn scalar_string(node: &Node) -> Option<String> {
    match node {
        Node::Null => Some("null".to_string()),
        Node::Bool(b) => Some(b.to_string()),
        Node::Number(n) => Some(n.to_string()),
        Node::String(s) => Some(s.clone()),
        Node::Tagged(t) => scalar_string(&t.value),
        Node::Sequence(_) | Node::Mapping(_) => None,
    }
}

/// The node for a new value `text` replacing `old` (see the module docs).
pub(super) fn typed(text: &str, old: &Node) -> Node {
    if is_canonical_int(text)
        && let Ok(i) = text.parse::<i64>()
    {
        return Node::Number(i.into());
    }
    match old {
        Node::Bool(_) if text == "true" || text == "false" => Node::Bool(text == "true"),
        Node::Number(n) if n.is_f64() => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Node::Number(Number::from(f)),
            _ => Node::String(text.to_string()),
        },
        _ => Node::String(text.to_string()),
    }
}

fn is_canonical_int(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0"
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parses_keys_indexes_and_wildcards() {
        let segs = parse(Parser::Json, "a[0][2].*.b").unwrap();
        assert_eq!(segs, vec![Seg::Key("a".into()), Seg::Index(0), Seg::Index(2), Seg::Any, Seg::Key("b".into())]);
        assert!(parse(Parser::Json, "a..b").is_err());
        assert!(parse(Parser::Json, "a[x]").is_err());
        assert!(parse(Parser::Json, "a[1").is_err());
    }

    #[test]
    fn typing_rules() {
        assert_eq!(typed("25565", &Node::Null), Node::Number(25565.into()));
        assert_eq!(typed("007", &Node::Null), Node::String("007".into()));
        assert_eq!(typed("true", &Node::Null), Node::String("true".into()));
        assert_eq!(typed("false", &Node::Bool(true)), Node::Bool(false));
        assert_eq!(typed("1.5", &Node::Number(Number::from(0.5))), Node::Number(Number::from(1.5)));
        assert_eq!(typed("1.5", &Node::String("x".into())), Node::String("1.5".into()));
    }
}
