//! Comparing decision paths: an expectation with what a scenario's run decided, or a recorded
//! run with its replay. Each compared decision is a [`Row`]; rendered side by side.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::scenario::decision_path::{Decided, DecisionPath, ids, list};
use crate::scenario::raw::{ActionState, VerifyExpect};
use crate::scenario::scenario_file::Expect;

/// What a row shows when the expectation leaves a decision open.
pub const ANY: &str = "(any)";

/// One decision, two ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// What is decided (`outcome`, `check healthz`, `cause matched`, ...).
    pub what: String,
    /// Expected (or recorded).
    pub left: String,
    /// Actual (or replayed).
    pub right: String,
    /// The two agree.
    pub same: bool,
}

impl Row {
    fn new(what: impl Into<String>, left: impl Into<String>, right: impl Into<String>) -> Row {
        let (left, right) = (left.into(), right.into());
        Row {
            what: what.into(),
            same: left == right,
            left,
            right,
        }
    }

    fn any(what: impl Into<String>, right: impl Into<String>) -> Row {
        Row {
            what: what.into(),
            left: ANY.into(),
            right: right.into(),
            same: true,
        }
    }
}

/// Compare a scenario's expectation with the path its run took; `levels` are the runbook's
/// escalation levels, lowest first.
#[must_use]
pub fn expectation(e: &Expect, p: &DecisionPath, levels: &[String]) -> Vec<Row> {
    let mut rows = vec![Row::new("outcome", e.outcome.name(), &p.outcome)];
    let present = p.symptoms_present();
    rows.push(match &e.symptoms {
        Some(s) => set_row("symptoms present", s, &present),
        None => Row::any("symptoms present", ids(&present)),
    });
    let matched = p.causes_with("matched");
    rows.push(match &e.matched {
        Some(m) => Row::new("causes matched", ids(m), ids(&matched)),
        None => Row::any("causes matched", ids(&matched)),
    });
    for (what, exp, status) in [
        ("causes ruled out", &e.ruled_out, "ruled_out"),
        ("causes unknown", &e.unknown, "unknown"),
    ] {
        let actual = p.causes_with(status);
        rows.push(match exp {
            Some(x) => set_row(what, x, &actual),
            None => Row::any(what, ids(&actual)),
        });
    }
    for c in &p.checks {
        let what = format!("check {}", c.id);
        rows.push(match e.checks.iter().find(|(id, _)| *id == c.id) {
            Some((_, st)) => Row::new(what, st.name(), &c.status),
            None => Row::any(what, &c.status),
        });
    }
    for (id, st) in &e.checks {
        if p.check(id).is_none() {
            rows.push(Row::new(format!("check {id}"), st.name(), "(not run)"));
        }
    }
    actions(&mut rows, "action", e.actions.as_deref(), &p.actions);
    verify(&mut rows, &e.verify, p);
    actions(&mut rows, "rollback", e.rollbacks.as_deref(), &p.rollbacks);
    let escalation = p.escalation(levels);
    rows.push(match &e.escalation {
        Some(x) => Row::new("escalation", x, escalation),
        None => Row::any("escalation", escalation),
    });
    rows
}

fn set_row<S: AsRef<str>>(what: &str, expected: &[S], actual: &[&str]) -> Row {
    let e: BTreeSet<&str> = expected.iter().map(AsRef::as_ref).collect();
    let a: BTreeSet<&str> = actual.iter().copied().collect();
    Row {
        what: what.into(),
        left: ids(expected),
        right: ids(actual),
        same: e == a,
    }
}

fn actions(
    rows: &mut Vec<Row>,
    label: &str,
    expected: Option<&[(String, ActionState)]>,
    actual: &[Decided],
) {
    let Some(expected) = expected else {
        if actual.is_empty() {
            rows.push(Row::any(format!("{label}s"), "-"));
        }
        for a in actual {
            rows.push(Row::any(format!("{label} {}", a.id), &a.status));
        }
        return;
    };
    let attempted: Vec<&(String, ActionState)> = expected
        .iter()
        .filter(|(_, s)| *s != ActionState::NotRun)
        .collect();
    if attempted.is_empty() && actual.is_empty() {
        rows.push(Row::new(format!("{label}s"), "-", "-"));
    }
    for i in 0..attempted.len().max(actual.len()) {
        let e = attempted.get(i);
        let a = actual.get(i);
        let what = match (e, a) {
            (Some((eid, _)), Some(a)) if *eid == a.id => format!("{label} {eid}"),
            _ => format!("{label} #{}", i + 1),
        };
        let left = e.map_or_else(
            || "(none)".to_owned(),
            |(id, s)| format!("{id} {}", s.name()),
        );
        let right = a.map_or_else(|| "(none)".to_owned(), |a| format!("{} {}", a.id, a.status));
        let mut row = Row::new(what, left, right);
        // With the id in the label, show the statuses alone.
        if let (Some((eid, s)), Some(a)) = (e, a)
            && *eid == a.id
        {
            s.name().clone_into(&mut row.left);
            row.right.clone_from(&a.status);
        }
        rows.push(row);
    }
    for (id, _) in expected.iter().filter(|(_, s)| *s == ActionState::NotRun) {
        let ran: Vec<&str> = actual
            .iter()
            .filter(|a| a.id == *id)
            .map(|a| a.status.as_str())
            .collect();
        let right = if ran.is_empty() {
            ActionState::NotRun.name().to_owned()
        } else {
            ran.join(", ")
        };
        rows.push(Row::new(
            format!("{label} {id}"),
            ActionState::NotRun.name(),
            right,
        ));
    }
}

fn verify(rows: &mut Vec<Row>, expected: &[(String, VerifyExpect)], p: &DecisionPath) {
    for (id, v) in expected {
        let actual = p.verified(id);
        let what = format!("verify {id}");
        let right = ids(&actual);
        rows.push(match v {
            VerifyExpect::Last(s) => Row {
                what,
                left: format!("… {}", s.name()),
                same: actual.last() == Some(&s.name()),
                right,
            },
            VerifyExpect::Each(each) => {
                let names: Vec<&str> = each.iter().map(|s| s.name()).collect();
                Row {
                    what,
                    left: ids(&names),
                    same: names == actual,
                    right,
                }
            }
        });
    }
    let mut seen: Vec<&str> = Vec::new();
    for v in &p.verifications {
        if expected.iter().any(|(id, _)| *id == v.id) || seen.contains(&v.id.as_str()) {
            continue;
        }
        seen.push(&v.id);
        rows.push(Row::any(
            format!("verify {}", v.id),
            ids(&p.verified(&v.id)),
        ));
    }
}

/// Compare a recorded run's decisions with its replay's.
#[must_use]
pub fn replay(recorded: &DecisionPath, replayed: &DecisionPath, levels: &[String]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (label, a, b) in [
        ("check", &recorded.checks, &replayed.checks),
        ("symptom", &recorded.symptoms, &replayed.symptoms),
        ("cause", &recorded.causes, &replayed.causes),
        ("action", &recorded.actions, &replayed.actions),
        ("verify", &recorded.verifications, &replayed.verifications),
        ("rollback", &recorded.rollbacks, &replayed.rollbacks),
        ("escalation", &recorded.escalations, &replayed.escalations),
    ] {
        by_id(&mut rows, label, a, b);
    }
    rows.push(Row::new(
        "escalation level",
        recorded.escalation(levels),
        replayed.escalation(levels),
    ));
    rows.push(Row::new("outcome", &recorded.outcome, &replayed.outcome));
    rows
}

/// One row per id (in order of first appearance, the replay's first), with every status it
/// had in order.
fn by_id(rows: &mut Vec<Row>, label: &str, a: &[Decided], b: &[Decided]) {
    let mut order: Vec<&str> = Vec::new();
    for d in b.iter().chain(a) {
        if !order.contains(&d.id.as_str()) {
            order.push(&d.id);
        }
    }
    let of = |side: &[Decided], id: &str| {
        let s: Vec<&str> = side
            .iter()
            .filter(|d| d.id == id)
            .map(|d| d.status.as_str())
            .collect();
        if s.is_empty() {
            "(none)".to_owned()
        } else {
            s.join(", ")
        }
    };
    for id in order {
        rows.push(Row::new(format!("{label} {id}"), of(a, id), of(b, id)));
    }
}

/// The rows side by side under two titles, a `✗` before each that differs; `all`: also the
/// rows that agree.
#[must_use]
pub fn render(rows: &[Row], titles: (&str, &str), all: bool, indent: &str) -> String {
    let shown: Vec<&Row> = rows.iter().filter(|r| all || !r.same).collect();
    let w0 = shown
        .iter()
        .map(|r| r.what.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    let w1 = shown
        .iter()
        .map(|r| r.left.chars().count())
        .max()
        .unwrap_or(0)
        .max(titles.0.len())
        .min(48);
    let mut out = String::new();
    let _ = writeln!(out, "{indent}  {:w0$}  {:w1$}  {}", "", titles.0, titles.1);
    for r in shown {
        let mark = if r.same { ' ' } else { '✗' };
        let _ = writeln!(
            out,
            "{indent}{mark} {:w0$}  {:w1$}  {}",
            r.what, r.left, r.right
        );
    }
    out
}

/// The path a run took, in a few lines (for a scenario that could not be compared).
#[must_use]
pub fn summary(p: &DecisionPath, indent: &str) -> String {
    let mut out = String::new();
    for (what, items) in [
        ("checks", &p.checks),
        ("causes", &p.causes),
        ("actions", &p.actions),
        ("verify", &p.verifications),
        ("rollbacks", &p.rollbacks),
        ("escalation", &p.escalations),
    ] {
        let _ = writeln!(out, "{indent}{what:11}{}", list(items));
    }
    let _ = writeln!(out, "{indent}{:11}{}", "outcome", p.outcome);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::raw::{CheckState, ExpectedOutcome};
    use serde_json::json;

    fn path() -> DecisionPath {
        let mut p = DecisionPath {
            outcome: "remediated".into(),
            ..DecisionPath::default()
        };
        p.push("check", "healthz", "failed", &json!({}));
        p.push("cause", "down", "matched", &json!({}));
        p.push("cause", "auth", "ruled_out", &json!({}));
        p.push("action", "restart", "ok", &json!({}));
        p.push("verify", "healthz", "ok", &json!({}));
        p
    }

    fn expect() -> Expect {
        Expect {
            outcome: ExpectedOutcome::Remediated,
            symptoms: None,
            matched: Some(vec!["down".into()]),
            ruled_out: Some(vec!["auth".into()]),
            unknown: Some(vec![]),
            checks: vec![("healthz".into(), CheckState::Failed)],
            actions: Some(vec![
                ("restart".into(), ActionState::Ok),
                ("reload".into(), ActionState::NotRun),
            ]),
            rollbacks: Some(vec![]),
            verify: vec![("healthz".into(), VerifyExpect::Each(vec![CheckState::Ok]))],
            escalation: Some("none".into()),
        }
    }

    #[test]
    fn a_matching_expectation_has_every_row_the_same() {
        let rows = expectation(&expect(), &path(), &["L1".into()]);
        let bad: Vec<&Row> = rows.iter().filter(|r| !r.same).collect();
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn each_wrong_expectation_is_its_own_row() {
        let mut e = expect();
        e.outcome = ExpectedOutcome::ProblemRemains;
        e.actions = Some(vec![("restart".into(), ActionState::NeedsApproval)]);
        e.verify = vec![("healthz".into(), VerifyExpect::Last(CheckState::Failed))];
        e.escalation = Some("L1".into());
        let rows = expectation(&e, &path(), &["L1".into()]);
        let bad: Vec<&str> = rows
            .iter()
            .filter(|r| !r.same)
            .map(|r| r.what.as_str())
            .collect();
        assert_eq!(
            bad,
            vec!["outcome", "action restart", "verify healthz", "escalation"]
        );
        let text = render(&rows, ("expected", "actual"), false, "");
        assert!(text.contains("✗ outcome"), "{text}");
        assert!(text.contains("problem_remains"), "{text}");
    }

    #[test]
    fn an_action_expected_not_to_run_that_ran_differs() {
        let mut e = expect();
        e.actions = Some(vec![("restart".into(), ActionState::NotRun)]);
        let rows = expectation(&e, &path(), &["L1".into()]);
        assert!(
            rows.iter()
                .any(|r| !r.same && r.what == "action restart" && r.right == "ok"),
            "{rows:?}"
        );
    }

    #[test]
    fn replay_rows_name_each_changed_decision() {
        let a = path();
        let mut b = path();
        b.checks[0].status = "ok".into();
        b.outcome = "healthy".into();
        let rows = replay(&a, &b, &["L1".into()]);
        let bad: Vec<&str> = rows
            .iter()
            .filter(|r| !r.same)
            .map(|r| r.what.as_str())
            .collect();
        assert_eq!(bad, vec!["check healthz", "outcome"]);
    }
}
