//! Input validation at the API edge. Every user string is checked here before it reaches the
//! store, a playbook variable or a node-query command; errors name the field.

use std::net::IpAddr;
use std::str::FromStr;

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

/// Result of a validation.
pub type Valid<T> = Result<T, Invalid>;

fn invalid<T>(field: &'static str, message: impl Into<String>) -> Valid<T> {
    Err(Invalid {
        field,
        message: message.into(),
    })
}

/// A required id of type `T` (UUID).
pub fn id<T: FromStr>(field: &'static str, value: &str) -> Valid<T> {
    if value.is_empty() {
        return invalid(field, "is required");
    }
    if value.len() > 64 {
        return invalid(field, "is not a valid id");
    }
    value
        .parse()
        .or_else(|_| invalid(field, "is not a valid id (expected a UUID)"))
}

/// An optional id: empty means none.
pub fn optional_id<T: FromStr>(field: &'static str, value: &str) -> Valid<Option<T>> {
    if value.is_empty() {
        Ok(None)
    } else {
        id(field, value).map(Some)
    }
}

/// A DNS-label-like identifier: lowercase ASCII letters, digits and single hyphens, starting
/// with a letter and ending with a letter or digit. Used for slugs and names that end up in
/// Linux user names, database names and host names.
pub fn label(field: &'static str, value: &str, max_len: usize) -> Valid<String> {
    if value.is_empty() {
        return invalid(field, "is required");
    }
    if value.len() > max_len {
        return invalid(field, format!("must be at most {max_len} characters"));
    }
    let bytes = value.as_bytes();
    if !bytes[0].is_ascii_lowercase() {
        return invalid(field, "must start with a lowercase letter");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return invalid(
            field,
            "may contain only lowercase letters, digits and hyphens",
        );
    }
    if value.ends_with('-') || value.contains("--") {
        return invalid(field, "must not end with a hyphen or contain two in a row");
    }
    Ok(value.to_owned())
}

/// A site slug (1-40 characters).
pub fn slug(value: &str) -> Valid<String> {
    label("slug", value, 40)
}

/// Free text shown to humans (names, titles): trimmed, 1..=max characters, no control
/// characters.
pub fn display_text(field: &'static str, value: &str, max_chars: usize) -> Valid<String> {
    let value = value.trim();
    if value.is_empty() {
        return invalid(field, "is required");
    }
    if value.chars().count() > max_chars {
        return invalid(field, format!("must be at most {max_chars} characters"));
    }
    if value.chars().any(char::is_control) {
        return invalid(field, "must not contain control characters");
    }
    Ok(value.to_owned())
}

/// A host name (RFC 1123, lowercase, no trailing dot) or an IP address.
pub fn host(field: &'static str, value: &str) -> Valid<String> {
    if value.parse::<IpAddr>().is_ok() {
        return Ok(value.to_owned());
    }
    hostname(field, value)
}

/// A DNS host name: lowercase labels of letters, digits and hyphens separated by dots.
pub fn hostname(field: &'static str, value: &str) -> Valid<String> {
    if value.is_empty() {
        return invalid(field, "is required");
    }
    if value.len() > 253 {
        return invalid(field, "must be at most 253 characters");
    }
    for part in value.split('.') {
        let ok = !part.is_empty()
            && part.len() <= 63
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-');
        if !ok {
            return invalid(
                field,
                "must be a lowercase host name (letters, digits, hyphens and dots, no trailing dot)",
            );
        }
    }
    Ok(value.to_owned())
}

/// A custom domain: a host name with at least two labels, not an IP address.
pub fn domain(field: &'static str, value: &str) -> Valid<String> {
    let name = hostname(field, value)?;
    if !name.contains('.')
        || name
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return invalid(field, "must be a domain name such as example.com");
    }
    Ok(name)
}

/// An IP address (empty allowed when `optional`).
pub fn ip(field: &'static str, value: &str) -> Valid<String> {
    value
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .or_else(|_| invalid(field, "must be an IPv4 or IPv6 address"))
}

/// A TCP port; 0 means the default.
pub fn port(field: &'static str, value: u32, default: u16) -> Valid<u16> {
    match value {
        0 => Ok(default),
        1..=65535 => Ok(u16::try_from(value).unwrap_or(default)),
        _ => invalid(field, "must be between 1 and 65535"),
    }
}

/// A POSIX user name as accepted by useradd (lowercase, 1-32 characters).
pub fn unix_user(field: &'static str, value: &str) -> Valid<String> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        invalid(
            field,
            "must be a user name of lowercase letters, digits, '_' and '-' (at most 32)",
        )
    }
}

/// An email address (a pragmatic check: one '@', a dot in the domain, no spaces).
pub fn email(field: &'static str, value: &str) -> Valid<String> {
    let value = value.trim();
    let ok = value.len() <= 254
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(value.to_ascii_lowercase())
    } else {
        invalid(field, "must be an email address")
    }
}

/// A PHP version like "8.3"; empty means the default.
pub fn php_version(value: &str) -> Valid<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    let ok = value.split_once('.').is_some_and(|(major, minor)| {
        matches!(major, "7" | "8")
            && !minor.is_empty()
            && minor.len() <= 2
            && minor.bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        Ok(Some(value.to_owned()))
    } else {
        invalid("php_version", "must look like \"8.3\"")
    }
}

/// A WordPress version like "6.6" or "6.6.2", or "latest"; empty means "latest".
pub fn wordpress_version(field: &'static str, value: &str) -> Valid<String> {
    if value.is_empty() || value == "latest" {
        return Ok("latest".to_owned());
    }
    let parts: Vec<&str> = value.split('.').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(value.to_owned())
    } else {
        invalid(field, "must be \"latest\" or a version like \"6.6.2\"")
    }
}

/// An http(s) URL without credentials, spaces or control characters.
pub fn http_url(field: &'static str, value: &str) -> Valid<String> {
    if value.is_empty() {
        return invalid(field, "is required");
    }
    if value.len() > 2048 {
        return invalid(field, "must be at most 2048 characters");
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let Some(rest) = rest else {
        return invalid(field, "must start with http:// or https://");
    };
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid(field, "must not contain spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return invalid(field, "must name a host and carry no credentials");
    }
    Ok(value.to_owned())
}

/// An S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending
/// with a letter or digit.
pub fn bucket(field: &'static str, value: &str) -> Valid<String> {
    let ok = (3..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(value.to_owned())
    } else {
        invalid(
            field,
            "must be 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit",
        )
    }
}

/// A key prefix inside a bucket: letters, digits and `/._-`, no `..`; may be empty.
pub fn key_prefix(field: &'static str, value: &str) -> Valid<String> {
    let ok = value.len() <= 200
        && !value.split('/').any(|part| part == "..")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if ok {
        Ok(value.trim_matches('/').to_owned())
    } else {
        invalid(
            field,
            "must be at most 200 letters, digits, '/', '.', '_', '-', without '..'",
        )
    }
}

/// A credential (key id or secret): 1-256 printable ASCII characters, no spaces.
pub fn credential(field: &'static str, value: &str) -> Valid<String> {
    if (1..=256).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value.to_owned())
    } else {
        invalid(field, "must be 1-256 printable characters without spaces")
    }
}

/// A region such as `us-east-1` (lowercase letters, digits, '-'); empty means `us-east-1`.
pub fn region(field: &'static str, value: &str) -> Valid<String> {
    if value.is_empty() {
        return Ok("us-east-1".into());
    }
    if value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(value.to_owned())
    } else {
        invalid(field, "must be a region such as us-east-1")
    }
}

/// A git repository URL: https:// or ssh in the `git@host:path` / `ssh://` forms.
pub fn git_url(field: &'static str, value: &str) -> Valid<String> {
    if value.starts_with("https://") || value.starts_with("http://") {
        return http_url(field, value);
    }
    let ok = value.len() <= 2048
        && (value.starts_with("ssh://") || value.starts_with("git@"))
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@:/._-~+".contains(c));
    if ok {
        Ok(value.to_owned())
    } else {
        invalid(
            field,
            "must be an https://, ssh:// or git@host:path repository URL",
        )
    }
}

/// A git ref: branch, tag or commit; empty means the default branch.
pub fn git_ref(field: &'static str, value: &str) -> Valid<String> {
    let ok = value.len() <= 200
        && !value.starts_with('-')
        && !value.contains("..")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if ok {
        Ok(value.to_owned())
    } else {
        invalid(
            field,
            "must be a branch, tag or commit (letters, digits, '/', '.', '_', '-')",
        )
    }
}

/// A hex SHA-256; empty allowed.
pub fn optional_sha256(field: &'static str, value: &str) -> Valid<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Some(value.to_ascii_lowercase()))
    } else {
        invalid(field, "must be 64 hexadecimal characters")
    }
}

/// A WordPress plugin or theme slug.
pub fn wp_component(field: &'static str, value: &str) -> Valid<String> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_owned())
    } else {
        invalid(
            field,
            "must be a plugin or theme slug (lowercase letters, digits, '-', '_')",
        )
    }
}

/// A page size: 0 means `default`, otherwise 1..=max.
pub fn page_size(value: i32, default: u32, max: u32) -> Valid<u32> {
    match value {
        0 => Ok(default),
        v if v < 0 => invalid("page_size", "must not be negative"),
        v => Ok((v as u32).min(max)),
    }
}

/// An OpenSSH public key line ("ssh-ed25519 AAAA... [comment]"), normalised to "type base64".
pub fn ssh_public_key(field: &'static str, value: &str) -> Valid<String> {
    let value = value.trim();
    if value.len() > 16 * 1024 {
        return invalid(field, "is too long");
    }
    let mut parts = value.split_whitespace();
    let (Some(kind), Some(data)) = (parts.next(), parts.next()) else {
        return invalid(
            field,
            "must be an OpenSSH public key (\"ssh-ed25519 AAAA...\")",
        );
    };
    match russh::keys::PublicKey::from_openssh(&format!("{kind} {data}")) {
        Ok(_) => Ok(format!("{kind} {data}")),
        Err(_) => invalid(
            field,
            "must be an OpenSSH public key (\"ssh-ed25519 AAAA...\")",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(slug("my-blog2").is_ok());
        for bad in [
            "",
            "My",
            "1abc",
            "a_b",
            "a-",
            "a--b",
            "a b",
            "ä",
            &"a".repeat(41),
        ] {
            assert!(slug(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hosts() {
        assert!(host("h", "127.0.0.1").is_ok());
        assert!(host("h", "::1").is_ok());
        assert!(hostname("h", "www.example.com").is_ok());
        for bad in [
            "",
            "Example.com",
            "a..b",
            "-a.com",
            "a.com.",
            "a b",
            "a;rm -rf",
            "é.com",
        ] {
            assert!(hostname("h", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn urls() {
        assert!(http_url("u", "https://example.com/a.tar.gz").is_ok());
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://u:p@x/",
            "https://x/a b",
            "file:///etc/passwd",
        ] {
            assert!(http_url("u", bad).is_err(), "{bad:?} accepted");
        }
        assert!(git_url("g", "git@github.com:org/repo.git").is_ok());
        assert!(git_url("g", "git@x:$(reboot)").is_err());
        assert!(git_ref("r", "main").is_ok());
        assert!(git_ref("r", "--upload-pack=x").is_err());
        assert!(git_ref("r", "a..b").is_err());
    }

    #[test]
    fn versions_and_emails() {
        assert_eq!(php_version("").expect("ok"), None);
        assert!(php_version("8.3").is_ok());
        assert!(php_version("8.3; id").is_err());
        assert_eq!(wordpress_version("w", "").expect("ok"), "latest");
        assert!(wordpress_version("w", "6.6.2").is_ok());
        assert!(wordpress_version("w", "6").is_err());
        assert_eq!(
            email("e", " Admin@Example.com ").expect("ok"),
            "admin@example.com"
        );
        for bad in ["", "a", "a@b", "@b.c", "a@.c", "a b@c.d"] {
            assert!(email("e", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ids_and_pages() {
        assert!(id::<uuid::Uuid>("x", "").is_err());
        assert!(id::<uuid::Uuid>("x", "not-a-uuid").is_err());
        assert!(id::<uuid::Uuid>("x", "0192f0c4-7d55-7c3e-9d59-111111111111").is_ok());
        assert_eq!(page_size(0, 50, 500).expect("ok"), 50);
        assert_eq!(page_size(9999, 50, 500).expect("ok"), 500);
        assert!(page_size(-1, 50, 500).is_err());
        assert!(port("p", 70000, 22).is_err());
        assert_eq!(port("p", 0, 22).expect("ok"), 22);
    }

    #[test]
    fn ssh_keys() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWf6sZkF2kcJ9xKJ2fB0z3gMHfVY3ZCxpJHKZt1U9cB comment";
        assert_eq!(
            ssh_public_key("k", key).expect("ok"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWf6sZkF2kcJ9xKJ2fB0z3gMHfVY3ZCxpJHKZt1U9cB"
        );
        assert!(ssh_public_key("k", "ssh-ed25519 garbage").is_err());
        assert!(ssh_public_key("k", "").is_err());
    }
}
