//! Egg files as written (PTDL_v1, PTDL_v2, PLCN_v1–v3, JSON or YAML): lenient where the wild is
//! (booleans as 0/1, config blocks as JSON strings or objects, `{}` for an empty list), and
//! order-preserving where order means something (the first image is the default).

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A map that keeps the file's order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Scalar, V>()? {
                    out.push((k.0, v));
                }
                Ok(Ordered(out))
            }
            // `[]` and `null` are how PHP writes an empty map.
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                match seq.next_element::<de::IgnoredAny>()? {
                    None => Ok(Ordered(Vec::new())),
                    Some(_) => Err(de::Error::custom("expected a map, found a non-empty list")),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
        }
        d.deserialize_any(V2(std::marker::PhantomData))
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// A string, also written as a number or a boolean (YAML defaults, PHP exports).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean, also written `0`/`1` or `"0"`/`"1"`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Scalar::deserialize(d)?.0;
        match s.as_str() {
            "1" | "true" => Ok(Flag(true)),
            "0" | "false" | "" => Ok(Flag(false)),
            other => Err(de::Error::custom(format!("expected a boolean, found {other:?}"))),
        }
    }
}

/// A list of strings, also written `{}`, `""` or `null` when empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct List(pub Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<Scalar>),
            Map(Ordered<de::IgnoredAny>),
            Text(String),
        }
        match Option::<Form>::deserialize(d)? {
            None => Ok(List(Vec::new())),
            Some(Form::List(l)) => Ok(List(l.into_iter().map(|s| s.0).collect())),
            Some(Form::Map(m)) if m.0.is_empty() => Ok(List(Vec::new())),
            Some(Form::Text(t)) if t.trim().is_empty() => Ok(List(Vec::new())),
            Some(_) => Err(de::Error::custom("expected a list of strings")),
        }
    }
}

/// A config block: a JSON document inside a string (PTDL, PLCN JSON) or the value itself (YAML).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Embedded<T>(pub T);

impl<'de, T: de::DeserializeOwned + Default> Deserialize<'de> for Embedded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form<T> {
            Text(String),
            Value(T),
        }
        match Option::<Form<T>>::deserialize(d)? {
            None => Ok(Embedded(T::default())),
            Some(Form::Text(t)) if t.trim().is_empty() || t.trim() == "[]" => Ok(Embedded(T::default())),
            Some(Form::Text(t)) => serde_json::from_str(&t).map(Embedded).map_err(de::Error::custom),
            Some(Form::Value(v)) => Ok(Embedded(v)),
        }
    }
}

/// Rules as a PTDL string, a PLCN list, or `{}` for none.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct RawRules(pub Vec<String>);

impl<'de> Deserialize<'de> for RawRules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            List(Vec<String>),
            Map(Ordered<de::IgnoredAny>),
        }
        match Option::<Form>::deserialize(d)? {
            None => Ok(RawRules(Vec::new())),
            Some(Form::Text(t)) => Ok(RawRules(crate::rules::split(&t))),
            Some(Form::List(l)) => {
                Ok(RawRules(l.into_iter().map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect()))
            }
            Some(Form::Map(m)) if m.0.is_empty() => Ok(RawRules(Vec::new())),
            Some(Form::Map(_)) => Err(de::Error::custom("rules must be a string or a list of strings")),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RawEgg {
    pub meta: RawMeta,
    pub name: String,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub images: List,
    #[serde(default)]
    pub docker_images: Ordered<String>,
    #[serde(default)]
    pub tags: List,
    #[serde(default)]
    pub features: List,
    #[serde(default)]
    pub file_denylist: List,
    #[serde(default)]
    pub startup: Option<String>,
    #[serde(default)]
    pub startup_commands: Ordered<String>,
    #[serde(default)]
    pub config: RawConfig,
    #[serde(default)]
    pub scripts: RawScripts,
    #[serde(default)]
    pub variables: Vec<RawVariable>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawMeta {
    #[serde(default)]
    pub update_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub files: Embedded<Ordered<RawFile>>,
    #[serde(default)]
    pub startup: Embedded<RawStartup>,
    #[serde(default)]
    pub stop: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawFile {
    pub parser: String,
    #[serde(default)]
    pub find: Ordered<RawFind>,
}

/// A `find` value: the replacement, or `{current: replacement}` pairs (`if_value`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawFind {
    Map(Ordered<Scalar>),
    Value(Scalar),
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawStartup {
    #[serde(default)]
    pub done: Done,
}

/// `done`: one string or several.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Done(pub Vec<String>);

impl<'de> Deserialize<'de> for Done {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Option::<Form>::deserialize(d)? {
            None => Done(Vec::new()),
            Some(Form::One(s)) => Done(vec![s]),
            Some(Form::Many(v)) => Done(v),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawScripts {
    #[serde(default)]
    pub installation: Option<RawInstall>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawInstall {
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub entrypoint: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawVariable {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub env_variable: String,
    #[serde(default)]
    pub default_value: Scalar,
    #[serde(default)]
    pub user_viewable: Flag,
    #[serde(default)]
    pub user_editable: Flag,
    #[serde(default)]
    pub rules: RawRules,
    #[serde(default)]
    pub sort: Option<i64>,
}
