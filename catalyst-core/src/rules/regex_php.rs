//! PHP (`preg_match`) patterns: delimiters, flags and translation to the Rust
//! `regex` crate.
//!
//! A PHP pattern is a whole delimited string such as `/^[\w.-]*$/i`. We find
//! the delimiters as PCRE does, map the flags to inline flags, and rewrite the
//! few constructs whose meaning differs between PCRE and Rust (ASCII `\d\w\s\b`
//! without `/u`, `$` before a final newline, `\/`, `\<`). Constructs Rust cannot
//! express (look-around, back-references, ...) are reported as errors.

use regex::Regex;

/// Is `c` usable as an opening delimiter (PHP: not alphanumeric, backslash or
/// whitespace)? We also require ASCII since PHP delimiters are single bytes.
fn valid_delimiter(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_alphanumeric() && c != '\\' && !c.is_ascii_whitespace() && c != '\0'
}

/// The closing delimiter: bracket-style delimiters pair up, others repeat.
fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '{' => '}',
        '[' => ']',
        '<' => '>',
        c => c,
    }
}

/// Byte index just past the closing delimiter of the pattern starting `p`,
/// or `None` if `p` has no valid opening delimiter or is unterminated.
pub(super) fn pattern_end(p: &str) -> Option<usize> {
    let mut it = p.char_indices();
    let (_, open) = it.next()?;
    if !valid_delimiter(open) {
        return None;
    }
    let close = closing(open);
    // Bracket-style delimiters nest (PCRE counts them), others do not.
    let mut depth = 1usize;
    while let Some((i, c)) = it.next() {
        if c == '\\' {
            it.next();
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i + 1);
            }
        } else if c == open && open != close {
            depth += 1;
        }
    }
    None
}

/// Parse a delimited PHP pattern and compile its Rust equivalent.
pub(super) fn compile(p: &str) -> Result<Regex, String> {
    let open = p.chars().next().ok_or("empty pattern")?;
    if !valid_delimiter(open) {
        return Err(format!("pattern {p} must start with a delimiter (not alphanumeric, backslash or whitespace)"));
    }
    let end = pattern_end(p).ok_or_else(|| format!("pattern {p} has no ending delimiter {:?}", closing(open)))?;
    let body = &p[open.len_utf8()..end - 1];
    let flags = &p[end..];
    let bad: String = flags.chars().filter(|c| !"imsxu".contains(*c)).collect();
    if !bad.is_empty() {
        return Err(format!("pattern {p} has unsupported flags {bad:?} (allowed: imsxu)"));
    }
    let unicode = flags.contains('u');
    let multiline = flags.contains('m');
    let translated = translate(body, open, unicode, multiline).map_err(|e| format!("pattern {p}: {e}"))?;
    let inline: String = flags.chars().filter(|c| "imsx".contains(*c)).collect();
    let source = if inline.is_empty() { translated } else { format!("(?{inline}){translated}") };
    Regex::new(&source).map_err(|e| {
        // The crate's message spans several lines; keep its final "error:" line.
        let text = e.to_string();
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        let last = last.trim().trim_start_matches("error: ");
        format!("pattern {p} cannot be compiled by the Rust regex engine: {last}")
    })
}

/// ASCII versions of PCRE's Perl classes (PCRE without `/u` is ASCII-only).
fn ascii_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        's' => r"[\t\n\x0B\x0C\r ]",
        'S' => r"[^\t\n\x0B\x0C\r ]",
        _ => return None,
    })
}

/// Rewrite a PCRE pattern body into Rust `regex` syntax.
fn translate(body: &str, delim: char, unicode: bool, multiline: bool) -> Result<String, String> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::with_capacity(body.len() + 16);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                return Err("pattern ends with a lone backslash".into());
            };
            i += 2;
            match n {
                'd' | 'D' | 'w' | 'W' | 's' | 'S' if !unicode => out.push_str(ascii_class(n).unwrap_or_default()),
                // Inside a PCRE class `\b` is a backspace.
                'b' if in_class => out.push_str(r"\x08"),
                'b' | 'B' if !unicode => out.push_str(if n == 'b' { r"(?-u:\b)" } else { r"(?-u:\B)" }),
                // `\Z`: end of subject or before a final newline.
                'Z' => out.push_str(r"(?:\n?\z)"),
                'e' => out.push_str(r"\x1B"),
                '1'..='9' | 'g' | 'k' => {
                    return Err("back-references are not supported by the Rust regex engine".into());
                }
                'G' | 'K' | 'R' | 'X' | 'C' | 'h' | 'H' | 'v' | 'V' | 'N' | 'Q' | 'E' | '0' => {
                    return Err(format!("escape \\{n} is not supported by the Rust regex engine"));
                }
                // PCRE lets any punctuation be escaped; Rust gives `\<`/`\>` a
                // meaning (word boundaries) and rejects some, so re-escape.
                n if n.is_ascii_punctuation() || n == delim => out.push_str(&regex::escape(&n.to_string())),
                n => {
                    out.push('\\');
                    out.push(n);
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' => in_class = false,
                '[' if chars.get(i + 1) == Some(&':') => {
                    // POSIX class `[:alpha:]`: copy through its `:]`.
                    let rest: String = chars[i..].iter().collect();
                    if let Some(e) = rest.find(":]") {
                        out.push_str(&rest[..e + 2]);
                        i += rest[..e + 2].chars().count();
                        continue;
                    }
                    out.push_str(r"\[");
                    i += 1;
                    continue;
                }
                // Literal in PCRE classes, but nesting / set operators in Rust.
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                    i += 1;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A leading `]` is a literal member in PCRE.
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                }
                continue;
            }
            '$' if !multiline => out.push_str(r"(?:\n?\z)"),
            '(' if chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i + 2..chars.len().min(i + 5)].iter().collect();
                if ["=", "!", "<=", "<!"].iter().any(|p| rest.starts_with(p)) {
                    return Err("look-around is not supported by the Rust regex engine".into());
                }
                if [">", "|", "R", "&", "(", "#", "P=", "P>", "+"].iter().any(|p| rest.starts_with(p))
                    || rest.starts_with(|d: char| d.is_ascii_digit())
                {
                    return Err(format!(
                        "group (?{}... is not supported by the Rust regex engine",
                        rest.chars().next().unwrap_or(' ')
                    ));
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    if in_class {
        return Err("unterminated character class".into());
    }
    Ok(out)
}
