//! How values read on a page: UTC times, durations, percentages, signed amounts, status
//! badges, and links (path segments percent-encoded, only http(s) URLs as links).

use chrono::{DateTime, Utc};
use maud::{html, Markup};

/// A UTC time, readable and machine-readable: `<time datetime="…">2025-10-08 14:03:12 UTC</time>`.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
            (at.format("%Y-%m-%d %H:%M:%S")) " UTC"
        }
    }
}

/// [`time`], or a dash.
pub fn opt_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => dash(),
    }
}

/// A placeholder for a missing value, read out as "none".
pub fn dash() -> Markup {
    html! { span.none aria-label="none" { "—" } }
}

/// A text, or a dash when it is missing or empty.
pub fn opt_text(text: Option<&str>) -> Markup {
    match text {
        Some(text) if !text.is_empty() => html! { (text) },
        _ => dash(),
    }
}

/// Seconds as `1 h 2 min 5 s`, `3 min 7 s`, `45 s`.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m} min {s} s"),
    }
}

/// A fraction (0.6667) as a percentage with one decimal (`66.7%`).
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A signed amount: `+100`, `-3`, `0`.
pub fn signed(amount: i64) -> String {
    if amount > 0 {
        format!("+{amount}")
    } else {
        amount.to_string()
    }
}

/// A user-facing call status as a badge (`in_progress` reads "in progress").
pub fn status(status: &str) -> Markup {
    let class = match status {
        "completed" => "badge ok",
        "failed" => "badge bad",
        "cancelled" => "badge muted",
        _ => "badge",
    };
    html! { span class=(class) { (status.replace('_', " ")) } }
}

/// A call's outcome as a badge (`no_answer` reads "no answer").
pub fn outcome(outcome: &str) -> Markup {
    let class = match outcome {
        "booked" => "badge ok",
        "failed" | "busy" | "no_answer" => "badge bad",
        "other" => "badge muted",
        _ => "badge",
    };
    html! { span class=(class) { (outcome.replace('_', " ")) } }
}

/// A cost unit as people read it (`usd` → "USD", `cents` → "cents", `credits` → "credits").
pub fn cost_unit(unit: &str) -> &str {
    match unit {
        "usd" => "USD",
        other => other,
    }
}

/// A lead tag as a badge.
pub fn lead_tag(tag: &str) -> Markup {
    let class = match tag {
        "Hot" => "badge hot",
        "Warm" => "badge warm",
        _ => "badge cold",
    };
    html! { span class=(class) { (tag) } }
}

/// `url` if it is an absolute http(s) URL, the only kind rendered as a link (a provider's
/// `javascript:` "recording" must never become one).
pub fn safe_url(url: &str) -> Option<&str> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

/// The console page of a call.
pub fn call_href(execution_id: &str) -> String {
    format!("/calls/{}", segment(execution_id))
}

/// The console page of `provider`'s call (the provider picks it when several providers' calls
/// have the id).
pub fn provider_call_href(provider: &str, execution_id: &str) -> String {
    format!("{}?provider={}", call_href(execution_id), segment(provider))
}

/// The console page of a contact.
pub fn contact_href(phone: &str) -> String {
    format!("/contacts/{}", segment(phone))
}

/// Percent-encodes a path segment (everything but RFC 3986's unreserved characters).
pub fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `path?query` from pairs whose value is not empty (`path` alone when none is left).
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    match serde_urlencoded::to_string(&pairs) {
        Ok(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(93), "1 min 33 s");
        assert_eq!(duration(3725), "1 h 2 min 5 s");
    }

    #[test]
    fn rates_are_percentages() {
        assert_eq!(percent(0.6667), "66.7%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(percent(1.0), "100.0%");
    }

    #[test]
    fn only_http_urls_become_links() {
        assert_eq!(
            safe_url(" https://x.example/r.mp3"),
            Some("https://x.example/r.mp3")
        );
        assert_eq!(safe_url("HTTP://x.example/r"), Some("HTTP://x.example/r"));
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url("//evil.example"), None);
        assert_eq!(safe_url("data:text/html,x"), None);
    }

    #[test]
    fn links_encode_what_a_path_cannot_hold() {
        assert_eq!(contact_href("+14155550132"), "/contacts/%2B14155550132");
        assert_eq!(call_href("a/b?c#d"), "/calls/a%2Fb%3Fc%23d");
        assert_eq!(
            with_query(
                "/calls",
                &[("phone", "+1 415"), ("status", ""), ("sort", "longest")]
            ),
            "/calls?phone=%2B1+415&sort=longest"
        );
        assert_eq!(with_query("/calls", &[("status", "")]), "/calls");
    }

    #[test]
    fn times_are_utc_and_machine_readable() {
        let at = DateTime::from_timestamp(1_759_932_192, 0).unwrap_or_default();
        let html = time(at).into_string();
        assert!(
            html.contains(r#"datetime="2025-10-08T14:03:12Z""#),
            "{html}"
        );
        assert!(html.contains("2025-10-08 14:03:12 UTC"), "{html}");
    }
}
