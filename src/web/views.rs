//! The pages' view models (askama templates in `templates/web/`) and the formatting they share.
//! Everything a template prints is a plain string prepared here; askama escapes it.

use askama::Template;
use events::order::Status;

/// A stored UTC time (RFC 3339) as the operator reads it: Japan time, to the minute.
pub fn jst(stored: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(stored) {
        Ok(time) => time.with_timezone(&events::clock::jst()).format("%Y-%m-%d %H:%M JST").to_string(),
        Err(_) => stored.to_owned(),
    }
}

pub fn jst_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time.with_timezone(&events::clock::jst()).format("%Y-%m-%d %H:%M:%S JST").to_string()
}

/// A status as a colour badge: the code, the guide's Japanese label, and its CSS class.
#[derive(Debug, Clone)]
pub struct Badge {
    pub code: &'static str,
    pub label: &'static str,
    pub class: String,
}

impl Badge {
    pub fn of(status: Status) -> Self {
        Self {
            code: status.as_str(),
            label: status.label(),
            class: format!("badge s-{}", status.as_str().to_lowercase()),
        }
    }

    /// For a stored status text that this build does not know (shown as is, grey).
    pub fn of_stored(text: &str) -> Self {
        match text.parse::<Status>() {
            Ok(status) => Self::of(status),
            Err(_) => Self { code: "UNKNOWN", label: "不明", class: "badge".into() },
        }
    }
}

/// One option of a `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Builds `path?k=v&…` with every value URL-encoded; empty values are left out.
pub fn href(path: &str, params: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = params.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    match serde_urlencoded::to_string(&kept) {
        Ok(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}

#[derive(Template)]
#[template(path = "web/message.html")]
pub struct MessagePage {
    pub title: String,
    pub message: String,
    pub back: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_in_japan_time() {
        assert_eq!(jst("2026-11-22T01:15:00.000000Z"), "2026-11-22 10:15 JST");
        assert_eq!(jst("not a time"), "not a time");
    }

    #[test]
    fn links_encode_their_values() {
        assert_eq!(href("/", &[("q", "a&b <c>"), ("status", "")]), "/?q=a%26b+%3Cc%3E");
        assert_eq!(href("/events", &[]), "/events");
    }

    #[test]
    fn every_status_has_its_own_badge_class() {
        let classes: std::collections::HashSet<String> = Status::ALL.into_iter().map(|s| Badge::of(s).class).collect();
        assert_eq!(classes.len(), Status::ALL.len());
        let css = include_str!("../../templates/web/assets/admin.css");
        for status in Status::ALL {
            let selector = format!(".s-{}", status.as_str().to_lowercase());
            assert!(css.contains(&selector), "admin.css has no colour for {status}");
        }
    }
}
