//! The `yaml`/`yml` parser: parse, edit with the JSON path rules ([`super::path`]), write back.
//!
//! As Wings, comments and formatting are not kept (the document is re-serialised); key order
//! is. A missing or empty file starts as an empty mapping. Multi-document files, duplicate keys
//! and other malformed YAML are errors.
//!
//! Alias bombs ("billion laughs"): serde_norway itself refuses to replay more than 100 aliases
//! per event of the document, and the document is additionally built through a budgeted
//! visitor that gives up once the expanded tree exceeds [`EXPANSION_BUDGET`] units (one per node
//! plus one per byte of scalar text), so expansion is bounded in time and memory.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_norway::value::{Tag, TaggedValue};
use serde_norway::{Mapping, Value as Node};

use super::{EditError, Parser, Replacement, path};

/// Maximum size of the expanded YAML tree (nodes + scalar bytes).
pub(super) const EXPANSION_BUDGET: usize = 32 * 1024 * 1024;

/// Applies path edits to a YAML document.
pub(super) fn apply(current: Option<&str>, edits: &[Replacement]) -> Result<String, EditError> {
    let mut root = parse(current.unwrap_or(""))?;
    path::apply_all(Parser::Yaml, &mut root, edits)?;
    serde_norway::to_string(&root).map_err(|e| EditError::new(Parser::Yaml, format!("cannot write YAML: {e}")))
}

fn parse(text: &str) -> Result<Node, EditError> {
    if text.trim().is_empty() {
        return Ok(Node::Mapping(Mapping::new()));
    }
    let mut budget = EXPANSION_BUDGET;
    let de = serde_norway::Deserializer::from_str(text);
    let node = Budgeted { left: &mut budget }
        .deserialize(de)
        .map_err(|e| EditError::new(Parser::Yaml, format!("malformed YAML: {e}")))?;
    Ok(match node {
        Node::Null => Node::Mapping(Mapping::new()),
        other => other,
    })
}

/// Builds a [`Node`] while charging `left`; fails when it runs out.
struct Budgeted<'b> {
    left: &'b mut usize,
}

impl Budgeted<'_> {
    fn charge<E: de::Error>(&mut self, units: usize) -> Result<(), E> {
        match self.left.checked_sub(units.saturating_add(1)) {
            Some(rest) => {
                *self.left = rest;
                Ok(())
            }
            None => Err(E::custom("document expands beyond the size limit (alias bomb?)")),
        }
    }

    fn again(&mut self) -> Budgeted<'_> {
        Budgeted { left: self.left }
    }
}

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<Node, E> {
        self.charge(0)?;
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<Node, E> {
        self.charge(0)?;
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<Node, E> {
        self.charge(0)?;
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Node, E> {
        self.charge(0)?;
        Ok(Node::Number(v.into()))
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Node, E> {
        self.charge(v.len())?;
        Ok(Node::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(mut self, v: String) -> Result<Node, E> {
        self.charge(v.len())?;
        Ok(Node::String(v))
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<Node, E> {
        self.charge(0)?;
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Node, A::Error> {
        self.charge(0)?;
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(self.again())? {
            out.push(item);
        }
        Ok(Node::Sequence(out))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Node, A::Error> {
        self.charge(0)?;
        let mut out = Mapping::new();
        while let Some(key) = map.next_key_seed(self.again())? {
            let value = map.next_value_seed(self.again())?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            out.insert(key, value);
        }
        Ok(Node::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(mut self, data: A) -> Result<Node, A::Error> {
        self.charge(0)?;
        let (tag, variant) = data.variant::<String>()?;
        let value = variant.newtype_variant_seed(self.again())?;
        Ok(Node::Tagged(Box::new(TaggedValue { tag: Tag::new(tag), value })))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn empty_and_null_documents_become_mappings() {
        assert_eq!(parse("").unwrap(), Node::Mapping(Mapping::new()));
        assert_eq!(parse("~\n").unwrap(), Node::Mapping(Mapping::new()));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        assert!(parse("a: 1\na: 2\n").is_err());
    }

    #[test]
    fn tags_survive() {
        let out = apply(Some("a: !custom 5\nb: 1\n"), &[]).unwrap();
        assert_eq!(out, "a: !custom 5\nb: 1\n");
    }
}
