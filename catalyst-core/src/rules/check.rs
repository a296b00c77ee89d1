//! Checking one value against one rule, and PHP's number syntaxes.

use std::cmp::Ordering;

use super::formats;
use super::parse::{Bound, Parsed, Rule};

/// PHP `trim` (space, `\t`, `\n`, `\r`, `\0`, `\x0B`): Laravel treats a value
/// that trims to nothing as empty.
pub(super) fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// A number from a numeric string: exact for integers that fit `i64`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    /// Parse a string for which [`is_numeric`] holds.
    pub(super) fn parse(s: &str) -> Num {
        let t = s.trim_matches(is_php_space);
        if let Ok(i) = t.parse::<i64>() {
            return Num::Int(i);
        }
        Num::Float(t.parse::<f64>().unwrap_or(f64::NAN))
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Compare two numbers; integers are compared exactly.
    pub(super) fn cmp_num(&self, other: &Num) -> Ordering {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a.cmp(b),
            _ => self.as_f64().partial_cmp(&other.as_f64()).unwrap_or(Ordering::Equal),
        }
    }
}

/// Whitespace PHP's numeric-string grammar allows around a number.
fn is_php_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C')
}

/// PHP 8 `is_numeric` for strings: optional surrounding whitespace, optional
/// sign, digits with optional fraction (`.5`, `1.` allowed), optional exponent.
/// No hex, no `inf`/`nan`.
pub(super) fn is_numeric(s: &str) -> bool {
    let b = s.trim_matches(is_php_space).as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// PHP `filter_var(FILTER_VALIDATE_INT)`, without its whitespace trimming:
/// optional sign, no leading zeros (except `0` itself), within `i64`.
pub(super) fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let well_formed =
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'));
    // `i64::from_str` accepts a leading `+` and checks the range.
    well_formed && s.parse::<i64>().is_ok()
}

/// Laravel `getSize`: the number itself when a numeric rule applies and the
/// value is numeric, otherwise the length in characters (`mb_strlen`).
fn size(value: &str, numeric_sizes: bool) -> (Num, String) {
    if numeric_sizes && is_numeric(value) {
        (Num::parse(value), value.trim_matches(is_php_space).to_string())
    } else {
        let n = value.chars().count();
        let unit = if n == 1 { "character" } else { "characters" };
        (Num::Int(n as i64), format!("{n} {unit}"))
    }
}

/// Compare the value's size against a bound with `ok`, else explain with `what`.
fn compare(
    value: &str,
    numeric_sizes: bool,
    bound: &Bound,
    ok: fn(Ordering) -> bool,
    what: &str,
) -> Result<(), String> {
    let (n, shown) = size(value, numeric_sizes);
    if ok(n.cmp_num(&bound.num)) { Ok(()) } else { Err(format!("{shown} is {what} {}", bound.text)) }
}

fn test(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(msg()) }
}

/// Check `value` (non-empty unless the rule is implicit) against one rule.
pub(super) fn check_one(p: &Parsed, value: &str, numeric_sizes: bool) -> Result<(), String> {
    let v = value;
    let empty = php_trim(v).is_empty();
    match &p.rule {
        Rule::Required | Rule::Filled => test(!empty, || "a value is required".into()),
        Rule::Nullable | Rule::Sometimes | Rule::Present | Rule::Bail | Rule::String => Ok(()),
        Rule::Integer => test(is_integer(v), || format!("{v:?} is not an integer")),
        Rule::Numeric => test(is_numeric(v), || format!("{v:?} is not a number")),
        // Product decision: Laravel accepts only "0"/"1" for string values, but
        // we also accept "true"/"false" since they are what users type.
        Rule::Boolean => {
            test(matches!(v, "0" | "1" | "true" | "false"), || format!("{v:?} is not a boolean (0, 1, true or false)"))
        }
        Rule::Min(b) => compare(v, numeric_sizes, b, Ordering::is_ge, "less than"),
        Rule::Max(b) => compare(v, numeric_sizes, b, Ordering::is_le, "more than"),
        Rule::Size(b) => compare(v, numeric_sizes, b, Ordering::is_eq, "not"),
        Rule::Gt(b) => compare(v, numeric_sizes, b, Ordering::is_gt, "not greater than"),
        Rule::Gte(b) => compare(v, numeric_sizes, b, Ordering::is_ge, "less than"),
        Rule::Lt(b) => compare(v, numeric_sizes, b, Ordering::is_lt, "not less than"),
        Rule::Lte(b) => compare(v, numeric_sizes, b, Ordering::is_le, "more than"),
        Rule::Between(a, b) => {
            let (n, shown) = size(v, numeric_sizes);
            test(n.cmp_num(&a.num).is_ge() && n.cmp_num(&b.num).is_le(), || {
                format!("{shown} is not between {} and {}", a.text, b.text)
            })
        }
        Rule::Digits(n) => test(all_digits(v) && v.len() == *n, || format!("{v:?} is not {n} digits")),
        Rule::DigitsBetween(a, b) => {
            test(all_digits(v) && (*a..=*b).contains(&v.len()), || format!("{v:?} is not {a} to {b} digits"))
        }
        // Laravel compares loosely (`"01" == "1"`); we compare exactly.
        Rule::In(list) => test(list.iter().any(|x| x == v), || format!("{v:?} is not one of {}", list.join(", "))),
        Rule::NotIn(list) => {
            test(!list.iter().any(|x| x == v), || format!("{v:?} is not allowed (one of {})", list.join(", ")))
        }
        Rule::StartsWith(list) => test(list.iter().any(|x| !x.is_empty() && v.starts_with(x.as_str())), || {
            format!("{v:?} does not start with one of {}", list.join(", "))
        }),
        Rule::EndsWith(list) => test(list.iter().any(|x| !x.is_empty() && v.ends_with(x.as_str())), || {
            format!("{v:?} does not end with one of {}", list.join(", "))
        }),
        Rule::Alpha => test(formats::alpha(v, ""), || format!("{v:?} may only contain letters")),
        Rule::AlphaNum => test(formats::alpha(v, "n"), || format!("{v:?} may only contain letters and numbers")),
        Rule::AlphaDash => test(formats::alpha(v, "n-_"), || {
            format!("{v:?} may only contain letters, numbers, dashes and underscores")
        }),
        Rule::Url => test(formats::url(v), || format!("{v:?} is not a valid URL")),
        Rule::Regex(re, src) => test(re.is_match(v), || format!("{v:?} does not match {src}")),
        Rule::NotRegex(re, src) => test(!re.is_match(v), || format!("{v:?} must not match {src}")),
        Rule::Lowercase => test(v.to_lowercase() == v, || format!("{v:?} is not lowercase")),
        Rule::Uppercase => test(v.to_uppercase() == v, || format!("{v:?} is not uppercase")),
        Rule::Ip => test(v.parse::<std::net::IpAddr>().is_ok(), || format!("{v:?} is not an IP address")),
        Rule::Ipv4 => test(v.parse::<std::net::Ipv4Addr>().is_ok(), || format!("{v:?} is not an IPv4 address")),
        Rule::Ipv6 => test(v.parse::<std::net::Ipv6Addr>().is_ok(), || format!("{v:?} is not an IPv6 address")),
        Rule::Json => test(formats::json(v), || format!("{v:?} is not valid JSON")),
        Rule::Uuid => test(formats::uuid(v), || format!("{v:?} is not a UUID")),
        Rule::Accepted => {
            test(matches!(v, "yes" | "on" | "1" | "true"), || format!("{v:?} is not accepted (yes, on, 1 or true)"))
        }
        Rule::Declined => {
            test(matches!(v, "no" | "off" | "0" | "false"), || format!("{v:?} is not declined (no, off, 0 or false)"))
        }
    }
}

fn all_digits(v: &str) -> bool {
    v.bytes().all(|b| b.is_ascii_digit())
}
