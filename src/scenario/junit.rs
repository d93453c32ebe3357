//! `JUnit` XML for CI: a `testsuite` per scenario file, a `testcase` per scenario; a failed
//! scenario carries the expected and actual decisions side by side, an invalid file or
//! scenario an `error`. No times: the report is the same on every run.

use std::fmt::Write as _;

/// One test case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The scenario's name.
    pub name: String,
    /// The runbook it drives.
    pub classname: String,
    /// Where it is written (`file:line`).
    pub line: Option<usize>,
    /// A failed expectation: (message, body).
    pub failure: Option<(String, String)>,
    /// A scenario that could not be judged: (message, body).
    pub error: Option<(String, String)>,
}

/// One test suite: a scenario file.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The file.
    pub name: String,
    /// Its cases.
    pub cases: Vec<Case>,
}

/// The whole report.
#[must_use]
pub fn render(suites: &[Suite]) -> String {
    let count = |f: fn(&Case) -> bool| {
        suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| f(c))
            .count()
    };
    let tests = count(|_| true);
    let failures = count(|c| c.failure.is_some());
    let errors = count(|c| c.error.is_some());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"runbook test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    for s in suites {
        let f = s.cases.iter().filter(|c| c.failure.is_some()).count();
        let e = s.cases.iter().filter(|c| c.error.is_some()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\">",
            escape(&s.name),
            s.cases.len()
        );
        for c in &s.cases {
            let line = c.line.map(|l| format!(" line=\"{l}\"")).unwrap_or_default();
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\"{line}",
                escape(&c.name),
                escape(&c.classname),
                escape(&s.name)
            );
            match (&c.failure, &c.error) {
                (None, None) => out.push_str("/>\n"),
                (failure, error) => {
                    out.push_str(">\n");
                    for (tag, v) in [("failure", failure), ("error", error)] {
                        if let Some((message, body)) = v {
                            let _ = writeln!(
                                out,
                                "      <{tag} message=\"{}\" type=\"{tag}\">{}</{tag}>",
                                escape(message),
                                escape(body)
                            );
                        }
                    }
                    out.push_str("    </testcase>\n");
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escape text for an XML attribute or element; characters XML 1.0 cannot hold at all
/// (most control characters) become U+FFFD.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}"
        );
    }

    #[test]
    fn counts_and_cases_are_written() {
        let xml = render(&[Suite {
            name: "t/x.yaml".into(),
            cases: vec![
                Case {
                    name: "good".into(),
                    classname: "x".into(),
                    line: Some(3),
                    failure: None,
                    error: None,
                },
                Case {
                    name: "bad <one>".into(),
                    classname: "x".into(),
                    line: Some(9),
                    failure: Some(("outcome differs".into(), "a & b".into())),
                    error: None,
                },
            ],
        }]);
        assert!(
            xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"bad &lt;one&gt;\""), "{xml}");
        assert!(xml.contains(">a &amp; b</failure>"), "{xml}");
        assert!(
            xml.contains("<testcase name=\"good\" classname=\"x\" file=\"t/x.yaml\" line=\"3\"/>"),
            "{xml}"
        );
    }
}
