//! The `json` parser: dotted-path edits ([`super::path`]) on a JSON document.
//!
//! The document is read by serde_json into an order-keeping [`serde_norway::Value`] (so key
//! order survives without serde_json's `preserve_order` feature) and written back
//! pretty-printed with a 4-space indent (as Wings' `BytesIndent("", "    ")`) and a final
//! newline. A missing or blank file starts as `{}`. Malformed JSON (including trailing data and
//! nesting deeper than serde_json's limit of 128) is an error.

use serde::Serialize;
use serde_norway::{Mapping, Value as Node};

use super::{EditError, Parser, Replacement, path};

/// Applies path edits to a JSON document.
pub(super) fn apply(current: Option<&str>, edits: &[Replacement]) -> Result<String, EditError> {
    let text = current.unwrap_or("");
    let mut root = if text.trim().is_empty() {
        Node::Mapping(Mapping::new())
    } else {
        serde_json::from_str::<Node>(text.strip_prefix('\u{feff}').unwrap_or(text))
            .map_err(|e| EditError::new(Parser::Json, format!("malformed JSON: {e}")))?
    };
    path::apply_all(Parser::Json, &mut root, edits)?;
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    root.serialize(&mut ser).map_err(|e| EditError::new(Parser::Json, format!("cannot write JSON: {e}")))?;
    let mut out = String::from_utf8(out).map_err(|e| EditError::new(Parser::Json, e))?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod unit {
    use super::super::Value;
    use super::*;

    #[test]
    fn key_order_is_kept() {
        let edits = [Replacement { path: "a".into(), value: Value::Always("1".into()) }];
        let out = apply(Some(r#"{"z": 1, "a": 2, "m": [true, null, 1.5]}"#), &edits).unwrap();
        assert_eq!(
            out,
            "{\n    \"z\": 1,\n    \"a\": 1,\n    \"m\": [\n        true,\n        null,\n        1.5\n    ]\n}\n"
        );
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        let err = apply(Some("{} x"), &[]).unwrap_err();
        assert!(err.message.starts_with("json: malformed JSON"), "{err}");
    }
}
