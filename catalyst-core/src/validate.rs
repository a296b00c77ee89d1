//! Small input checks shared by every service, each naming the field it rejects.

use crate::{Error, Result};

/// A display name: 1..=max characters after trimming, no control characters.
pub fn name(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(Error::invalid(format!("{field} must be at most {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{field} must not contain control characters")));
    }
    Ok(v.to_string())
}

/// Free text up to `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String> {
    if value.chars().count() > max {
        return Err(Error::invalid(format!("{field} must be at most {max} characters")));
    }
    Ok(value.to_string())
}

/// An e-mail address, lower-cased: one `@`, a dot in the domain, no spaces.
pub fn email(value: &str) -> Result<String> {
    let v = value.trim().to_lowercase();
    let ok = v.len() <= 254
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(v) } else { Err(Error::invalid(format!("email {value:?} is not a valid address"))) }
}

/// A username: 3-191 of `[a-zA-Z0-9_.@+-]` (191 and `@` as in Pterodactyl: Blesta uses the
/// customer's e-mail address as the username).
pub fn username(value: &str) -> Result<String> {
    let ok =
        (3..=191).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric() || "_.-@+".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(Error::invalid("username must be 3-191 characters of letters, digits, '_', '.', '-', '@', '+'"))
    }
}

/// A password: 8-1024 bytes (argon2 input stays bounded).
pub fn password(value: &str) -> Result<()> {
    if value.len() < 8 {
        return Err(Error::invalid("password must be at least 8 characters"));
    }
    if value.len() > 1024 {
        return Err(Error::invalid("password must be at most 1024 bytes"));
    }
    Ok(())
}

/// A path relative to a server's root: not empty, not absolute, no `..`, no NUL.
pub fn relative_path(field: &str, value: &str) -> Result<String> {
    let v = value.trim().trim_start_matches("./");
    if v.is_empty() || v.len() > 4096 || v.starts_with('/') || v.contains('\0') || v.contains('\\') {
        return Err(Error::invalid(format!("{field} {value:?} must be a relative path inside the server's files")));
    }
    if v.split('/').any(|c| c == "..") {
        return Err(Error::invalid(format!("{field} {value:?} leaves the server's files ('..')")));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert_eq!(email(" A@B.io ").ok().as_deref(), Some("a@b.io"));
        for bad in ["a", "a@b", "@b.io", "a b@c.io", "a@.io", "a@b.io."] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(name("name", "  ", 10).is_err());
        assert!(name("name", "abcdefghijk", 10).is_err());
        assert_eq!(name("name", " ok ", 10).ok().as_deref(), Some("ok"));
        assert!(username("ab").is_err());
        assert!(username("a b c").is_err());
        assert!(username("<script>").is_err());
        assert!(username(&"a".repeat(192)).is_err());
        assert_eq!(username("client+7@example.test").ok().as_deref(), Some("client+7@example.test"), "Blesta");
        assert!(password("short").is_err());
    }
}
