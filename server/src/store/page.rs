//! Keyset paging: a page token is the opaque, URL-safe encoding of the last row's sort key, so
//! pages stay stable while rows are inserted.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::model::validate::Invalid;

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Token for the next page; empty on the last page.
    pub next_page_token: String,
}

/// The decoded sort key of the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageToken(pub Vec<String>);

const SEPARATOR: char = '\u{1f}';

impl PageToken {
    /// Decodes a client's token; empty means the first page.
    pub fn decode(token: &str) -> Result<Option<Self>, Invalid> {
        if token.is_empty() {
            return Ok(None);
        }
        let bad = || Invalid {
            field: "page_token",
            message: "is not a token returned by this server".to_owned(),
        };
        if token.len() > 1024 {
            return Err(bad());
        }
        let bytes = B64.decode(token).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let text = text.strip_prefix("p1").ok_or_else(bad)?;
        Ok(Some(Self(
            text.split(SEPARATOR).skip(1).map(str::to_owned).collect(),
        )))
    }

    /// Encodes a sort key.
    pub fn encode(parts: &[&str]) -> String {
        let mut text = String::from("p1");
        for part in parts {
            text.push(SEPARATOR);
            text.push_str(part);
        }
        B64.encode(text)
    }

    /// The `i`th part, or an error naming the token.
    pub fn part(&self, i: usize) -> Result<&str, Invalid> {
        self.0.get(i).map(String::as_str).ok_or(Invalid {
            field: "page_token",
            message: "is not a token returned by this server".to_owned(),
        })
    }
}

/// The error for a token this server did not issue.
pub fn invalid_page_token() -> crate::error::Error {
    crate::error::Error::Invalid(Invalid {
        field: "page_token",
        message: "is not a token returned by this server".to_owned(),
    })
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
pub fn paginate<T>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => {
            let k = key(last);
            PageToken::encode(&k.split(SEPARATOR).collect::<Vec<_>>())
        }
        _ => String::new(),
    };
    Page {
        items: rows,
        next_page_token,
    }
}

/// Joins a multi-part sort key for [`paginate`].
pub fn key(parts: &[&str]) -> String {
    parts.join(&SEPARATOR.to_string())
}

pub(super) fn created_before(after: Option<&PageToken>) -> crate::error::Result<(i64, String)> {
    match after {
        Some(t) => Ok((
            t.part(0)?.parse().map_err(|_| invalid_page_token())?,
            t.part(1)?.to_owned(),
        )),
        None => Ok((i64::MAX, String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = PageToken::encode(&["123", "abc"]);
        let d = PageToken::decode(&t).expect("ok").expect("some");
        assert_eq!(d.part(0).expect("p0"), "123");
        assert_eq!(d.part(1).expect("p1"), "abc");
        assert!(PageToken::decode("").expect("ok").is_none());
        assert!(PageToken::decode("!!!").is_err());
        assert!(PageToken::decode(&B64.encode("x")).is_err());
    }

    #[test]
    fn paginate_marks_more() {
        let p = paginate(vec![1, 2, 3], 2, ToString::to_string);
        assert_eq!(p.items, vec![1, 2]);
        assert!(!p.next_page_token.is_empty());
        let p = paginate(vec![1, 2], 2, ToString::to_string);
        assert!(p.next_page_token.is_empty());
    }
}
