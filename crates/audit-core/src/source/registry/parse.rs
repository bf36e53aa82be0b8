//! Pure parsers for registry headers: `WWW-Authenticate` challenges (RFC 7235, distribution
//! `token.md`), `Retry-After` (RFC 9110 §10.2.3) and distribution error bodies.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// An authentication challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// Lowercased scheme: `bearer`, `basic`, …
    pub(crate) scheme: String,
    /// Parameters with lowercased names (`realm`, `service`, `scope`, `error`).
    pub(crate) params: BTreeMap<String, String>,
}

impl Challenge {
    pub(crate) fn param(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
}

/// Parses every challenge in a `WWW-Authenticate` value. Parameters are `key=value` or
/// `key="quoted \" value"`, comma separated; a token not followed by `=` starts a new
/// challenge.
pub(crate) fn challenges(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b',' | b'=') {
            i += 1;
        }
        let token = &value[start..i];
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len()
            && b[j] == b'='
            && !token.is_empty()
            && !out.is_empty()
            && !(j + 1 < b.len() && b[j + 1] == b'=')
        {
            // A parameter of the current challenge (its name is a token: never empty).
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let v = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut s = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = value[i..].chars().next().unwrap_or('\u{fffd}');
                    s.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
                s
            } else {
                let s0 = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                value[s0..i].trim().to_string()
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(token.to_ascii_lowercase(), v);
            }
        } else if !token.is_empty() {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            // token68 (`Basic abc==`) is ignored: registries do not use it.
        } else {
            i += 1;
        }
    }
    out
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the
/// obsolete RFC 850 and asctime forms recipients must accept), as a delay from `now`; a date
/// in the past is no delay.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The target of the `rel="next"` link of a `Link` header (RFC 8288 §3), as the distribution
/// spec paginates listings: `</v2/_catalog?last=b&n=2>; rel="next"`.
pub(crate) fn next_link(value: &str) -> Option<&str> {
    value.split(',').find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then_some(target)
    })
}

/// The first `code: message` of a distribution error body
/// (`{"errors":[{"code":"…","message":"…"}]}`), made safe for a one-line message.
pub(crate) fn error_summary(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let e: Errors = serde_json::from_slice(body).ok()?;
    let first = e.errors.into_iter().next()?;
    let s = match (first.code.is_empty(), first.message.is_empty()) {
        (false, false) => format!("{}: {}", first.code, first.message),
        (false, true) => first.code,
        (true, false) => first.message,
        (true, true) => return None,
    };
    Some(one_line(&s, 200))
}

/// Control characters replaced, length bounded: text from a server is put in messages.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn bearer_and_basic_challenges() {
        let c = challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            c[0].param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );
        let c = challenges(r#"Basic realm="basic-realm""#);
        assert_eq!(
            (c[0].scheme.as_str(), c[0].param("realm")),
            ("basic", Some("basic-realm"))
        );
        let c =
            challenges(r#"Basic realm="a\"b", Bearer realm=https://x/t, error="invalid_token""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("a\"b"));
        assert_eq!(c[1].param("realm"), Some("https://x/t"));
        assert_eq!(c[1].param("error"), Some("invalid_token"));
        assert!(challenges("").is_empty());
        // token68 padding is not a parameter without a name (found by fuzz/, auth_challenge).
        for v in ["Basic dXNlcjpwYXNz==", "Bearer realm=x, =y,  = \"z\""] {
            let c = challenges(v);
            assert!(c.iter().all(|c| !c.params.contains_key("")), "{v}: {c:?}");
        }
        assert_eq!(challenges("Negotiate")[0].scheme, "negotiate");
        // Hostile input: unterminated quote, stray separators, non-ASCII.
        let c = challenges("Bearer realm=\"https://é/t, scope=,,, =x");
        assert_eq!(c[0].param("realm"), Some("https://é/t, scope=,,, =x"));
    }

    #[test]
    fn next_links() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r/a>; rel="prev", <https://r/b>;rel=next"#),
            Some("https://r/b")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:30 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        // Out of IMF-fixdate's ranges (RFC 9110 §5.6.7): not a date. fuzz/ (auth_challenge)
        // found the first one overflowing the hand-written calendar arithmetic httpdate
        // replaced.
        for v in [
            "Wed, 21 Oct 20212666666666666 07:28:00 GMT",
            "Wed, 21 Oct 2026 07:28:99999999999999999 GMT",
            "Wed, -9223372036854775808 Oct 2026 07:28:00 GMT",
            "Wed, 32 Oct 2026 07:28:00 GMT",
            "Wed, 21 Oct 2026 24:00:00 GMT",
        ] {
            assert_eq!(retry_after(v, now), None, "{v}");
        }
        assert_eq!(retry_after("-1", now), None);
    }

    #[test]
    fn retry_after_obsolete_date_forms() {
        // RFC 9110 §5.6.7: the RFC 850 and asctime forms of the same instant.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        for v in ["Sunday, 06-Nov-94 08:49:47 GMT", "Sun Nov  6 08:49:47 1994"] {
            assert_eq!(retry_after(v, now), Some(Duration::from_secs(10)), "{v}");
        }
        assert_eq!(retry_after("Sun, 06 Nov 1994 25:49:47 GMT", now), None);
    }

    #[test]
    fn error_bodies() {
        let b = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        assert_eq!(
            error_summary(b).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(error_summary(b"<html>"), None);
        assert_eq!(one_line("a\nb\x1b[31m", 100), "a b [31m");
        assert_eq!(one_line(&"x".repeat(300), 5), "xxxxx…");
    }
}
