//! Format checks: alpha*, url, uuid, json.

use std::sync::LazyLock;

use regex::Regex;

// Laravel's own patterns (`/\A[\pL\pM]+\z/u` ...): Unicode letters, marks, numbers.
static ALPHA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\A[\p{L}\p{M}]+\z").unwrap());
static ALPHA_NUM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\A[\p{L}\p{M}\p{N}]+\z").unwrap());
static ALPHA_DASH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\A[\p{L}\p{M}\p{N}_-]+\z").unwrap());

/// `alpha` (extra ""), `alpha_num` ("n") or `alpha_dash` ("n-_").
pub(super) fn alpha(v: &str, extra: &str) -> bool {
    match extra {
        "" => ALPHA.is_match(v),
        "n" => ALPHA_NUM.is_match(v),
        _ => ALPHA_DASH.is_match(v),
    }
}

/// A reasonable URL check (Laravel's is a huge regex): `scheme://host...`
/// with a syntactically valid scheme, a non-empty host, an optional numeric
/// port and no whitespace or control characters anywhere.
pub(super) fn url(v: &str) -> bool {
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = v.split_once("://") else {
        return false;
    };
    let mut sc = scheme.chars();
    if !sc.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop `user:password@`.
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
        let Some((ip, after)) = inner.split_once(']') else {
            return false;
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after.strip_prefix(':') {
            Some(p) => ("[v6]", Some(p)),
            None if after.is_empty() => ("[v6]", None),
            None => return false,
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if host == "[v6]" {
        return true;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_')))
}

/// `8-4-4-4-12` hexadecimal digits (Laravel `Str::isUuid`, any version).
pub(super) fn uuid(v: &str) -> bool {
    let groups: Vec<&str> = v.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Does `v` parse as JSON (any top-level value, as PHP `json_decode`)?
pub(super) fn json(v: &str) -> bool {
    let mut p = Json { b: v.as_bytes(), i: 0 };
    p.value(0) && {
        p.ws();
        p.i == p.b.len()
    }
}

/// A minimal validating JSON reader (serde_json is not available).
struct Json<'a> {
    b: &'a [u8],
    i: usize,
}

impl Json<'_> {
    /// PHP's default `json_decode` depth.
    const MAX_DEPTH: usize = 512;

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let ok = self.peek() == Some(c);
        if ok {
            self.i += 1;
        }
        ok
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth >= Self::MAX_DEPTH {
            return false;
        }
        self.ws();
        match self.peek() {
            Some(b'{') => self.seq(b'}', depth, |p, d| {
                p.ws();
                p.string() && p.eat(b':') && p.value(d + 1)
            }),
            Some(b'[') => self.seq(b']', depth, |p, d| p.value(d + 1)),
            Some(b'"') => self.string(),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            _ => self.number(),
        }
    }

    /// `[` or `{` already seen: items separated by commas until `close`.
    fn seq(&mut self, close: u8, depth: usize, item: fn(&mut Self, usize) -> bool) -> bool {
        self.i += 1;
        if self.eat(close) {
            return true;
        }
        loop {
            if !item(self, depth) {
                return false;
            }
            if self.eat(close) {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn word(&mut self, w: &[u8]) -> bool {
        let ok = self.b[self.i..].starts_with(w);
        self.i += w.len();
        ok
    }

    fn string(&mut self) -> bool {
        if self.peek() != Some(b'"') {
            return false;
        }
        self.i += 1;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return true,
                b'\\' => match self.peek() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                    Some(b'u') => {
                        let hex = self.b.get(self.i + 1..self.i + 5);
                        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            return false;
                        }
                        self.i += 5;
                    }
                    _ => return false,
                },
                c if c < 0x20 => return false,
                _ => {}
            }
        }
        false
    }

    fn number(&mut self) -> bool {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - s
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return false;
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return false;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return false;
            }
        }
        self.i > start
    }
}
