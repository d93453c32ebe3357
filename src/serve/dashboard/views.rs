//! [`Views`]: the dashboard's templates (minijinja, embedded with `include_str!`), rendered
//! with HTML auto-escaping: every value a page shows — runbook titles, alert labels, step
//! results — is escaped by the template engine, and only markup this crate generated (the
//! step graph's SVG, the stylesheet, the live script) is marked safe.

use chrono::{DateTime, Utc};
use minijinja::{Environment, Value};

/// The stylesheet of every page, inlined (no request leaves the page).
const CSS: &str = include_str!("templates/style.css");
/// The live-refresh script, inlined under the page's CSP nonce.
const LIVE_JS: &str = include_str!("templates/live.js");

/// The templates, loaded once.
pub struct Views {
    env: Environment<'static>,
}

impl Default for Views {
    fn default() -> Self {
        Self::new()
    }
}

impl Views {
    /// Load the embedded templates.
    ///
    /// # Panics
    /// When an embedded template does not parse (a build defect the unit tests catch).
    #[must_use]
    pub fn new() -> Views {
        let mut env = Environment::new();
        for (name, text) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("login.html", include_str!("templates/login.html")),
            ("runs.html", include_str!("templates/runs.html")),
            ("run_bar.html", include_str!("templates/run_bar.html")),
            ("body_attrs.html", include_str!("templates/body_attrs.html")),
            (
                "live_script.html",
                include_str!("templates/live_script.html"),
            ),
            ("incidents.html", include_str!("templates/incidents.html")),
            ("runbooks.html", include_str!("templates/runbooks.html")),
            ("error.html", include_str!("templates/error.html")),
        ] {
            env.add_template(name, text)
                .unwrap_or_else(|e| panic!("template `{name}`: {e}"));
        }
        env.add_global("css", Value::from_safe_string(CSS.to_owned()));
        env.add_global("live_js", Value::from_safe_string(LIVE_JS.to_owned()));
        env.add_filter("urlencode", |s: String| urlencode(&s));
        env.add_filter("when", |s: String| when(&s));
        env.add_filter("ms", |ms: i64| duration_ms(ms));
        env.add_filter("words", |s: String| s.replace('_', " "));
        Views { env }
    }

    /// Render page `name` with `ctx`.
    ///
    /// # Errors
    /// When the template fails (a defect: the message names it).
    pub fn render(&self, name: &str, ctx: &serde_json::Value) -> Result<String, minijinja::Error> {
        self.env
            .get_template(name)?
            .render(Value::from(minijinja::value::Serde(ctx)))
    }
}

impl Views {
    /// A run's post-mortem (a whole HTML document of its own, with its own style sheet) as a
    /// dashboard page: no favicon request, the dashboard's bar at the top of its body, and —
    /// when `ctx.live` names events — the live script, following the run until it ends.
    ///
    /// # Errors
    /// When a template fails (a defect).
    pub fn around_report(
        &self,
        report: &str,
        ctx: &serde_json::Value,
    ) -> Result<String, minijinja::Error> {
        let live = ctx
            .get("live")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|l| !l.is_empty());
        let bar = self.render("run_bar.html", ctx)?;
        let (attrs, script) = if live {
            (
                self.render("body_attrs.html", ctx)?,
                self.render("live_script.html", ctx)?,
            )
        } else {
            (String::new(), String::new())
        };
        let mut html = report.to_owned();
        if let Some(end) = html.rfind("</body>") {
            html.insert_str(end, &script);
        }
        if let Some(start) = html.find("<body")
            && let Some(len) = html[start..].find('>')
        {
            let at = start + len;
            html.insert_str(at + 1, &bar);
            html.insert_str(at, &attrs);
        }
        if let Some(head) = html.find("<head>") {
            html.insert_str(
                head + "<head>".len(),
                "\n<link rel=\"icon\" href=\"data:,\">",
            );
        }
        Ok(html)
    }
}

/// Percent-encode everything but RFC 3986's unreserved characters: a value is safe in a query
/// string or a path segment.
#[must_use]
pub fn urlencode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A stored RFC 3339 time as `2026-11-23 10:00:01` (UTC, to the second); what does not parse
/// is shown as stored.
#[must_use]
pub fn when(s: &str) -> String {
    DateTime::parse_from_rfc3339(s).map_or_else(
        |_| s.to_owned(),
        |t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}

/// A wall time for people: `850 ms`, `4.2 s`, `3m 07s`, `2h 05m`.
#[must_use]
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// How far `due` is from `now`, as the live script also writes it: `in 4m 12s`, `30s ago`.
#[must_use]
pub fn relative(due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let ms = (due - now).num_milliseconds();
    let s = (ms.unsigned_abs() + 500) / 1000;
    let span = if s >= 86_400 {
        format!("{}d {}h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    };
    if ms >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_parses_and_values_are_escaped() {
        let v = Views::new();
        let html = v
            .render(
                "error.html",
                &json!({"title": "<b>x</b>", "message": "<script>alert(1)</script>"}),
            )
            .unwrap();
        assert!(!html.contains("<script>alert(1)"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(urlencode("a b/<c>&é"), "a%20b%2F%3Cc%3E%26%C3%A9");
        assert_eq!(when("2026-11-23T10:00:01.234Z"), "2026-11-23 10:00:01");
        assert_eq!(when("soon"), "soon");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(4_200), "4.2 s");
        assert_eq!(duration_ms(187_000), "3m 07s");
        assert_eq!(duration_ms(7_500_000), "2h 05m");
        let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(relative(at("2030-01-01T00:04:12Z"), now), "in 4m 12s");
        assert_eq!(relative(at("2029-12-31T23:59:30Z"), now), "30s ago");
        assert_eq!(relative(at("2030-01-01T02:30:00Z"), now), "in 2h 30m");
        assert_eq!(relative(at("2030-01-03T01:00:00Z"), now), "in 2d 1h");
    }
}
