//! Parsing single rules (`keyword` or `keyword:parameters`) into [`Rule`].

use regex::Regex;

use super::RuleError;
use super::check::{Num, is_numeric};
use super::regex_php;

/// One understood rule.
#[derive(Debug, Clone)]
pub(super) enum Rule {
    Required,
    Nullable,
    Sometimes,
    Present,
    Filled,
    Bail,
    String,
    Integer,
    Numeric,
    Boolean,
    Min(Bound),
    Max(Bound),
    Between(Bound, Bound),
    Size(Bound),
    Digits(usize),
    DigitsBetween(usize, usize),
    In(Vec<String>),
    NotIn(Vec<String>),
    Gt(Bound),
    Gte(Bound),
    Lt(Bound),
    Lte(Bound),
    Alpha,
    AlphaNum,
    AlphaDash,
    Url,
    Regex(Box<Regex>, String),
    NotRegex(Box<Regex>, String),
    StartsWith(Vec<String>),
    EndsWith(Vec<String>),
    Lowercase,
    Uppercase,
    Ip,
    Ipv4,
    Ipv6,
    Json,
    Uuid,
    Accepted,
    Declined,
}

/// A numeric rule parameter, kept as written for messages.
#[derive(Debug, Clone)]
pub(super) struct Bound {
    pub(super) num: Num,
    pub(super) text: String,
}

/// A rule together with its keyword as written (for error messages).
#[derive(Debug, Clone)]
pub(super) struct Parsed {
    pub(super) name: String,
    pub(super) rule: Rule,
}

impl Rule {
    /// Laravel's implicit rules run even when the value is empty.
    pub(super) fn is_implicit(&self) -> bool {
        matches!(self, Rule::Required | Rule::Filled | Rule::Present | Rule::Accepted | Rule::Declined)
    }

    /// Rules after which Laravel's `getSize` measures numeric values as numbers
    /// (`numeric`/`integer`, and `gt`/`lt`... which add themselves via
    /// `shouldBeNumeric` when given a numeric parameter).
    pub(super) fn makes_sizes_numeric(&self) -> bool {
        matches!(self, Rule::Integer | Rule::Numeric | Rule::Gt(_) | Rule::Gte(_) | Rule::Lt(_) | Rule::Lte(_))
    }
}

/// Laravel StudlyCases keywords and PHP method names are case-insensitive, so
/// `digits_between`, `DigitsBetween` and `digits-between` are one rule.
fn normalize(keyword: &str) -> String {
    keyword.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase).collect()
}

/// Is this keyword `regex` or `not_regex` (whose parameter is kept whole)?
pub(super) fn is_regex_keyword(keyword: &str) -> bool {
    matches!(normalize(keyword.trim()).as_str(), "regex" | "notregex")
}

/// Parse one rule such as `max:20`, `in:a,"b,c"` or `regex:/^a|b$/`.
pub(super) fn parse_one(raw: &str) -> Result<Parsed, RuleError> {
    let raw = raw.trim();
    // Laravel splits on the first colon only; the rest is the parameter.
    let (keyword, param) = match raw.split_once(':') {
        Some((k, p)) => (k.trim(), Some(p)),
        None => (raw, None),
    };
    let name = keyword.to_string();
    let err = |msg: String| RuleError::new(name.clone(), msg);
    let key = normalize(keyword);
    let rule = match key.as_str() {
        "regex" | "notregex" => {
            let p = param.filter(|p| !p.is_empty()).ok_or_else(|| err("needs a pattern like /^[a-z]+$/".into()))?;
            let re = Box::new(regex_php::compile(p).map_err(err)?);
            if key == "regex" { Rule::Regex(re, p.to_string()) } else { Rule::NotRegex(re, p.to_string()) }
        }
        _ => {
            let params = param.map(str_getcsv);
            parse_plain(&key, params.as_deref()).map_err(err)?
        }
    };
    Ok(Parsed { name, rule })
}

/// Keywords whose parameters are CSV (`str_getcsv`), or which take none.
fn parse_plain(key: &str, params: Option<&[String]>) -> Result<Rule, String> {
    let none = |r: Rule| match params {
        None => Ok(r),
        Some(_) => Err("takes no parameters".to_string()),
    };
    Ok(match key {
        "required" => none(Rule::Required)?,
        "nullable" => none(Rule::Nullable)?,
        "sometimes" => none(Rule::Sometimes)?,
        "present" => none(Rule::Present)?,
        "filled" => none(Rule::Filled)?,
        "bail" => none(Rule::Bail)?,
        "string" => none(Rule::String)?,
        "integer" | "int" => none(Rule::Integer)?,
        "numeric" => none(Rule::Numeric)?,
        "boolean" | "bool" => none(Rule::Boolean)?,
        "alpha" => none(Rule::Alpha)?,
        "alphanum" => none(Rule::AlphaNum)?,
        "alphadash" => none(Rule::AlphaDash)?,
        "url" => none(Rule::Url)?,
        "lowercase" => none(Rule::Lowercase)?,
        "uppercase" => none(Rule::Uppercase)?,
        "ip" => none(Rule::Ip)?,
        "ipv4" => none(Rule::Ipv4)?,
        "ipv6" => none(Rule::Ipv6)?,
        "json" => none(Rule::Json)?,
        "uuid" => none(Rule::Uuid)?,
        "accepted" => none(Rule::Accepted)?,
        "declined" => none(Rule::Declined)?,
        "min" => Rule::Min(one_bound(params)?),
        "max" => Rule::Max(one_bound(params)?),
        "size" => Rule::Size(one_bound(params)?),
        "gt" => Rule::Gt(one_bound(params)?),
        "gte" => Rule::Gte(one_bound(params)?),
        "lt" => Rule::Lt(one_bound(params)?),
        "lte" => Rule::Lte(one_bound(params)?),
        "between" => {
            let [a, b] = count::<2>(params)?;
            let (a, b) = (bound(a)?, bound(b)?);
            if a.num.cmp_num(&b.num).is_gt() {
                return Err(format!("minimum {} is greater than maximum {}", a.text, b.text));
            }
            Rule::Between(a, b)
        }
        "digits" => {
            let [n] = count::<1>(params)?;
            Rule::Digits(length(n)?)
        }
        "digitsbetween" => {
            let [a, b] = count::<2>(params)?;
            let (a, b) = (length(a)?, length(b)?);
            if a > b {
                return Err(format!("minimum {a} is greater than maximum {b}"));
            }
            Rule::DigitsBetween(a, b)
        }
        "in" => Rule::In(list(params)?),
        "notin" => Rule::NotIn(list(params)?),
        "startswith" => Rule::StartsWith(list(params)?),
        "endswith" => Rule::EndsWith(list(params)?),
        _ => return Err("unknown rule".to_string()),
    })
}

/// Exactly `N` parameters.
fn count<const N: usize>(params: Option<&[String]>) -> Result<[&String; N], String> {
    let p = params.unwrap_or_default();
    let refs: Vec<&String> = p.iter().collect();
    refs.try_into().map_err(|_| {
        let s = if N == 1 { "" } else { "s" };
        format!("needs exactly {N} parameter{s}, got {}", p.len())
    })
}

fn one_bound(params: Option<&[String]>) -> Result<Bound, String> {
    let [p] = count::<1>(params)?;
    bound(p)
}

/// A numeric parameter (decimals allowed, as `between:0.1,64`).
fn bound(p: &str) -> Result<Bound, String> {
    let text = p.trim();
    if !is_numeric(text) {
        return Err(format!("parameter {p:?} is not a number"));
    }
    Ok(Bound { num: Num::parse(text), text: text.to_string() })
}

/// A non-negative integer parameter (digit counts).
fn length(p: &str) -> Result<usize, String> {
    let t = p.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("parameter {p:?} is not a non-negative integer"));
    }
    t.parse().map_err(|_| format!("parameter {p:?} is too large"))
}

/// At least one parameter.
fn list(params: Option<&[String]>) -> Result<Vec<String>, String> {
    match params {
        Some(p) if !(p.len() == 1 && p[0].is_empty()) => Ok(p.to_vec()),
        _ => Err("needs at least one value".to_string()),
    }
}

/// PHP `str_getcsv` with `,` separator, `"` enclosure: a field opening with
/// `"` is quoted (`""` is a literal quote, text after the closing quote is kept);
/// other fields are taken verbatim.
pub(super) fn str_getcsv(s: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        break;
                    }
                } else {
                    field.push(c);
                }
            }
        }
        let mut ended = true;
        for c in chars.by_ref() {
            if c == ',' {
                ended = false;
                break;
            }
            field.push(c);
        }
        fields.push(field);
        if ended {
            return fields;
        }
    }
}
