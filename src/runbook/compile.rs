//! The compiler: [`RawRunbook`] → [`Runbook`], collecting every problem instead of stopping.
//!
//! Passes, in order:
//! 1. names and ids: the runbook name matches its file, ids are `snake_case` and unique;
//! 2. params, triggers (cron), severity and escalation against `policy.yaml`;
//! 3. checks: probe kind, probe params (the probe's own struct), durations, sampling;
//! 4. every expression and template parses; every reference resolves (`checks.<id>.<field>`,
//!    `params.<name>`, `causes.<id>`, `symptoms.<id>`, `alert.*`); `remedy`, `verify`,
//!    `after`, `rollback` name existing steps;
//! 5. the check graph and the cause graph have no cycles;
//! 6. safety lint (design §4): shell scripts hold no templates and no alert values reach a
//!    shell; mutating remedies are verified; mutating actions are rate-limited; every cause
//!    is reachable and ends in remedy-and-verify or escalation; temporary changes roll back.
//!
//! A runbook is returned only when no error was found.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use crate::actions::ActionKind;
use crate::probes::{COMMON_FIELDS, ProbeKind, SAMPLE_FIELDS};
use crate::runbook::diagnostic::{Diagnostic, SourceFile};
use crate::runbook::expr;
use crate::runbook::model::{
    Action, ActionForm, Approve, Cause, Check, Escalation, Limit, Param, ParamType, Retry, Runbook,
    Sample, Symptom, Triggers,
};
use crate::runbook::node::Node;
use crate::runbook::param;
use crate::runbook::policy::Policy;
use crate::runbook::raw::{RawAction, RawCause, RawCheck, RawRunbook, RawSample, SString};
use crate::runbook::value::{DurationParam, is_template, parse_duration};

/// Default timeout of a check.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of an action.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Default approval wait.
pub const DEFAULT_APPROVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Fields of `causes.<id>`.
pub const CAUSE_FIELDS: &[&str] = &["matched", "ruled_out", "unknown", "status"];
/// Fields of `symptoms.<id>`.
pub const SYMPTOM_FIELDS: &[&str] = &["present"];
/// Fields of `alert`.
pub const ALERT_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "status",
    "starts_at",
    "ends_at",
    "fingerprint",
    "generator_url",
    "receiver",
    "name",
];
/// Roots available everywhere.
const FREE_ROOTS: &[&str] = &["host", "now", "run"];

/// What the compiler knows beyond the file.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    /// The policy, when one was found beside the runbooks.
    pub policy: Option<&'a Policy>,
    /// The name the file name implies.
    pub expected_name: Option<&'a str>,
}

/// Compile a raw runbook; errors and warnings come back together.
#[must_use]
pub fn compile(
    src: &Arc<SourceFile>,
    raw: &RawRunbook,
    cx: Context<'_>,
) -> (Option<Runbook>, Vec<Diagnostic>) {
    let mut c = Compiler::new(src, raw, cx);
    let runbook = c.run();
    let has_error = c
        .diags
        .iter()
        .any(|d| d.severity == crate::runbook::diagnostic::Severity::Error);
    (if has_error { None } else { Some(runbook) }, c.diags)
}

/// Where a reference appears: inside a check's `expect`, its probe's fields are top-level.
#[derive(Clone, Copy)]
enum Site {
    Expect(ProbeKind, bool),
    /// `expect` of a check whose probe is unknown (already reported): its fields are unknown.
    ExpectUnknownProbe,
    Check,
    Cause,
    Other,
}

#[derive(Default)]
struct Refs {
    checks: Vec<String>,
    causes: Vec<String>,
    tainted: bool,
    observes: bool,
    /// The expression or template did not parse (already reported).
    broken: bool,
}

struct Compiler<'a> {
    src: &'a Arc<SourceFile>,
    raw: &'a RawRunbook,
    cx: Context<'a>,
    diags: Vec<Diagnostic>,
    checks: HashMap<&'a str, (ProbeKind, bool)>,
    check_names: Vec<&'a str>,
    causes: Vec<&'a str>,
    actions: HashMap<&'a str, &'a RawAction>,
    symptoms: Vec<&'a str>,
    params: HashMap<&'a str, bool>,
    /// Params an alert sets with no `hosts` to pin them: it can point them anywhere.
    free: Vec<&'a str>,
    /// Params marked `secret`.
    secret: Vec<&'a str>,
}

impl<'a> Compiler<'a> {
    fn new(src: &'a Arc<SourceFile>, raw: &'a RawRunbook, cx: Context<'a>) -> Self {
        Compiler {
            src,
            raw,
            cx,
            diags: Vec::new(),
            checks: HashMap::new(),
            check_names: Vec::new(),
            causes: Vec::new(),
            actions: HashMap::new(),
            symptoms: Vec::new(),
            params: HashMap::new(),
            free: Vec::new(),
            secret: Vec::new(),
        }
    }

    fn at(&self, code: &'static str, message: impl Into<String>, loc: Location) -> Diagnostic {
        Diagnostic::error(code, message).at(self.src, self.src.span_of(loc))
    }

    fn at_in(
        &self,
        code: &'static str,
        message: impl Into<String>,
        loc: Location,
        needle: &str,
    ) -> Diagnostic {
        Diagnostic::error(code, message).at(self.src, self.src.span_within(loc, needle))
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn run(&mut self) -> Runbook {
        self.names();
        let params = self.params();
        let triggers = self.triggers();
        self.severity();
        let symptoms = self.symptoms();
        let checks = self.compile_checks();
        let causes = self.compile_causes();
        let actions = self.compile_actions();
        let escalation = self.escalation();
        self.check_cycles(&checks);
        self.cause_cycles(&causes);
        self.lint(&causes, &actions, escalation.is_some());
        Runbook {
            name: self.raw.runbook.value.clone(),
            title: self.raw.title.clone(),
            service: self.raw.service.clone(),
            severity: self.raw.severity.value.clone(),
            source: self.raw.source.clone(),
            description: self.raw.description.clone(),
            file: Arc::clone(self.src),
            triggers,
            params,
            symptoms,
            checks,
            causes,
            actions,
            escalation,
        }
    }

    // ---- pass 1: names and ids -------------------------------------------------------

    fn names(&mut self) {
        let name = &self.raw.runbook;
        if !is_runbook_name(&name.value) {
            let d = self
                .at(
                    "invalid-name",
                    format!("runbook name `{}` is not kebab-case", name.value),
                    name.referenced,
                )
                .help("use lowercase letters, digits and `-`, e.g. `sse-not-connecting`");
            self.push(d);
        }
        if let Some(expected) = self.cx.expected_name
            && expected != name.value
        {
            let d = self
                .at(
                    "name-mismatch",
                    format!("runbook `{}` is in a file named `{expected}`", name.value),
                    name.referenced,
                )
                .help(format!(
                    "rename the file to `{}.yaml` or the runbook to `{expected}`",
                    name.value
                ));
            self.push(d);
        }

        let raw = self.raw;
        let mut seen: HashMap<(&'static str, &'a str), Location> = HashMap::new();
        let all = raw
            .symptoms
            .iter()
            .map(|s| ("symptom", &s.id))
            .chain(raw.checks.iter().map(|c| ("check", &c.id)))
            .chain(raw.causes.iter().map(|c| ("cause", &c.id)))
            .chain(raw.actions.iter().map(|a| ("action", &a.id)));
        for (kind, id) in all {
            if !is_step_id(&id.value) {
                let d = self
                    .at("invalid-id", format!("{kind} id `{}` is not snake_case", id.value), id.referenced)
                    .help("ids are used in expressions (`checks.<id>.ok`): lowercase letters, digits and `_`, starting with a letter");
                self.push(d);
            }
            if let Some(first) = seen.get(&(kind, id.value.as_str())) {
                let d = self
                    .at(
                        "duplicate-id",
                        format!("duplicate {kind} id `{}`", id.value),
                        id.referenced,
                    )
                    .label("defined again here")
                    .help(format!(
                        "the first {kind} `{}` is at line {}; {kind} ids are unique",
                        id.value,
                        first.line()
                    ));
                self.push(d);
            } else {
                seen.insert((kind, &id.value), id.referenced);
            }
        }
        for s in &raw.symptoms {
            self.symptoms.push(&s.id.value);
        }
        for c in &raw.checks {
            let sampled = c.sample.is_some();
            if let Some(kind) = ProbeKind::from_name(&c.probe.value) {
                self.checks.entry(&c.id.value).or_insert((kind, sampled));
            }
            self.check_names.push(&c.id.value);
        }
        for c in &raw.causes {
            self.causes.push(&c.id.value);
        }
        for a in &raw.actions {
            self.actions.entry(&a.id.value).or_insert(a);
        }
    }

    // ---- pass 2: params, triggers, severity, escalation --------------------------------

    /// A param's `hosts`: only for `url`, `name` and `string`; each a host name, an address
    /// or `*.domain`; the default among them.
    fn param_hosts(
        &mut self,
        name: &str,
        ty: ParamType,
        p: &crate::runbook::raw::RawParam,
        default: Option<&serde_json::Value>,
    ) -> Vec<String> {
        let Some(hosts) = &p.hosts else {
            return Vec::new();
        };
        let at = hosts.first().map_or(p.ty.referenced, |h| h.referenced);
        if !matches!(ty, ParamType::Url | ParamType::Name | ParamType::String) {
            let d = self.at(
                "param-hosts",
                format!(
                    "`hosts` pins a url, name or string param, not `{name}` of type {}",
                    ty.name()
                ),
                at,
            );
            self.push(d);
            return Vec::new();
        }
        let mut out = Vec::new();
        for h in hosts {
            let bare = h.value.strip_prefix("*.").unwrap_or(&h.value);
            if bare.is_empty()
                || bare.contains('*')
                || bare
                    .chars()
                    .any(|c| c.is_whitespace() || "/@?#[]\\".contains(c))
            {
                let d = self
                    .at("param-hosts", format!("`{}` is not a host", h.value), h.referenced)
                    .help("a name (`feed.example.com`), an address (`127.0.0.1`, `::1`) or `*.example.com`");
                self.push(d);
            } else {
                out.push(h.value.clone());
            }
        }
        if let Some(text) = default.and_then(serde_json::Value::as_str)
            && let Err(msg) = param::check_host(ty, text, &out)
        {
            let loc = p.default.as_ref().map_or(at, |d| d.referenced);
            let d = self.at(
                "param-hosts",
                format!("default of param `{name}`: {msg}"),
                loc,
            );
            self.push(d);
        }
        out
    }

    /// A request that carries a secret (a `token_file`, or a secret param in any of its
    /// strings) whose `url`/`server` takes its host from an alert with no `hosts` to pin it:
    /// the alert could send the secret anywhere.
    fn secret_to_alert_host(
        &mut self,
        has_token_file: bool,
        strings: &[&Spanned<Node>],
        targets: &[(&str, &SString)],
    ) {
        let carries = has_token_file
            || strings.iter().any(|s| match &s.value {
                Node::Str(t) => self.secret.iter().any(|name| mentions_param(t, name)),
                _ => false,
            });
        if !carries {
            return;
        }
        let mut found = Vec::new();
        for (key, value) in targets {
            let free = self
                .free
                .iter()
                .map(|n| format!("params.{n}"))
                .find(|p| mentions_param(&value.value, &p["params.".len()..]))
                .or_else(|| mentions_alert(&value.value).then(|| "alert".to_owned()));
            if let Some(what) = free {
                found.push((*key, what, value.referenced));
            }
        }
        for (key, what, loc) in found {
            let help = match what.strip_prefix("params.") {
                Some(name) => format!(
                    "pin the param to the hosts it may name, e.g. `hosts: [127.0.0.1, localhost]` on `{name}`"
                ),
                None => "take the host from a param pinned by `hosts:`".to_owned(),
            };
            let d = self
                .at(
                    "secret-to-alert-host",
                    format!("`{key}` takes its host from an alert (`{what}`) and this request carries a secret: an alert could send the secret to any host"),
                    loc,
                )
                .help(help);
            self.push(d);
        }
    }

    /// A mutating action whose argument an alert sets with nothing to pin it (a free param,
    /// or the alert read directly): the alert chooses what is changed. A warning: restarting
    /// "the unit the alert names" can be meant, but it should be a decision.
    fn alert_chooses_target(&mut self, tainted: &[&SString]) {
        for t in tainted {
            let what = self
                .free
                .iter()
                .find(|n| mentions_param(&t.value, n))
                .map(|n| format!("params.{n}"))
                .or_else(|| mentions_alert(&t.value).then(|| "alert".to_owned()));
            if let Some(what) = what {
                let d = self
                    .at(
                        "alert-chooses-target",
                        format!("a mutating action takes `{what}` from an alert: the alert chooses what is changed"),
                        t.referenced,
                    )
                    .help("use a fixed value, or a param pinned by `hosts:`; alert labels are untrusted input")
                    .warning();
                self.push(d);
            }
        }
    }

    /// A `token_file` whose path an alert sets: the alert would choose which file is read and
    /// sent as a credential.
    fn token_file_from_alert(&mut self, token_file: &SString) {
        let from_alert = self
            .params
            .iter()
            .find(|(name, tainted)| **tainted && mentions_param(&token_file.value, name))
            .map(|(name, _)| format!("params.{name}"))
            .or_else(|| mentions_alert(&token_file.value).then(|| "alert".to_owned()));
        if let Some(what) = from_alert {
            let d = self
                .at(
                    "secret-from-alert-path",
                    format!("`token_file` takes its path from an alert (`{what}`): an alert could choose which file is read and sent as a credential"),
                    token_file.referenced,
                )
                .help("set the token file's path in the runbook (a default, or `--set`), not from an alert");
            self.push(d);
        }
    }

    /// A check's `with` sends a secret to a `url`/`server` an alert sets
    /// ([`Self::secret_to_alert_host`]).
    fn check_secret_targets(&mut self, with: &Spanned<Node>) {
        if let Node::Map(entries) = &with.value {
            let has_token_file = entries.iter().any(|(k, _)| k.value == "token_file");
            let targets: Vec<(&str, SString)> = entries
                .iter()
                .filter(|(k, _)| k.value == "url" || k.value == "server")
                .filter_map(|(k, v)| match &v.value {
                    Node::Str(t) => Some((
                        k.value.as_str(),
                        Spanned::new(t.clone(), v.referenced, v.referenced),
                    )),
                    _ => None,
                })
                .collect();
            let targets: Vec<(&str, &SString)> = targets.iter().map(|(k, v)| (*k, v)).collect();
            let mut all = Vec::new();
            Node::strings(with, &mut all);
            self.secret_to_alert_host(has_token_file, &all, &targets);
            if let Some((_, v)) = entries.iter().find(|(k, _)| k.value == "token_file")
                && let Node::Str(t) = &v.value
            {
                self.token_file_from_alert(&Spanned::new(t.clone(), v.referenced, v.referenced));
            }
        }
    }

    fn params(&mut self) -> Vec<Param> {
        let mut out = Vec::new();
        for (name, p) in &self.raw.params {
            let from_alert = p
                .from
                .as_ref()
                .is_some_and(|f| f.value.starts_with("alert"));
            self.params.insert(name, from_alert);
            if from_alert && p.hosts.is_none() {
                self.free.push(name);
            }
            if p.secret {
                self.secret.push(name);
            }
            if !is_step_id(name) {
                let d = Diagnostic::error(
                    "invalid-id",
                    format!("param name `{name}` is not snake_case"),
                )
                .at(self.src, self.src.span_before(p.ty.referenced, name))
                .help("params are read as `params.<name>`: lowercase letters, digits and `_`");
                self.push(d);
            }
            let Some(ty) = ParamType::from_name(&p.ty.value) else {
                let names: Vec<_> = ParamType::ALL.iter().map(|(n, _)| *n).collect();
                let d = self
                    .at(
                        "unknown-param-type",
                        format!("unknown param type `{}`", p.ty.value),
                        p.ty.referenced,
                    )
                    .help(format!("types: {}", names.join(", ")));
                self.push(d);
                continue;
            };
            let default = match &p.default {
                None => None,
                Some(node) => match param::from_node(ty, &node.value) {
                    Ok(v) => Some(v),
                    Err(msg) => {
                        let d = self.at(
                            "bad-param-default",
                            format!("default of param `{name}`: {msg}"),
                            node.referenced,
                        );
                        self.push(d);
                        None
                    }
                },
            };
            if let Some(from) = &p.from
                && !is_alert_path(&from.value)
            {
                let d = self
                    .at("bad-param-from", format!("`from: {}` is not an alert field", from.value), from.referenced)
                    .help("write `alert.labels.<name>`, `alert.annotations.<name>`, `alert.fingerprint` or `alert.status`");
                self.push(d);
            }
            let hosts = self.param_hosts(name, ty, p, default.as_ref());
            out.push(Param {
                name: name.clone(),
                ty,
                default,
                secret: p.secret,
                from: p.from.as_ref().map(|f| f.value.clone()),
                hosts,
                description: p.description.clone(),
            });
        }
        out
    }

    fn triggers(&mut self) -> Triggers {
        let t = &self.raw.triggers;
        if let Some(cron) = &t.schedule
            && let Err(e) = crate::runbook::cron::parse(&cron.value)
        {
            let d = self
                .at(
                    "bad-cron",
                    format!("invalid cron expression `{}`: {e}", cron.value),
                    cron.referenced,
                )
                .help("five fields: minute hour day-of-month month day-of-week, e.g. `0 6 * * *`");
            self.push(d);
        }
        Triggers {
            alerts: t.alerts.clone(),
            matchers: t.matchers.clone(),
            schedule: t.schedule.as_ref().map(|s| s.value.clone()),
        }
    }

    fn severity(&mut self) {
        let sev = &self.raw.severity;
        if let Some(policy) = self.cx.policy
            && !policy.severities.contains_key(&sev.value)
        {
            let known: Vec<_> = policy.severities.keys().cloned().collect();
            let d = self
                .at(
                    "unknown-severity",
                    format!("unknown severity `{}`", sev.value),
                    sev.referenced,
                )
                .help(format!("policy.yaml defines: {}", known.join(", ")));
            self.push(d);
        }
    }

    fn escalation(&mut self) -> Option<Escalation> {
        let e = self.raw.escalation.as_ref()?;
        if let (Some(policy), Some(ladder)) = (self.cx.policy, &e.ladder)
            && !policy.ladders.contains_key(&ladder.value)
        {
            let known: Vec<_> = policy.ladders.keys().cloned().collect();
            let d = self
                .at(
                    "unknown-ladder",
                    format!("unknown escalation ladder `{}`", ladder.value),
                    ladder.referenced,
                )
                .help(format!("policy.yaml defines: {}", known.join(", ")));
            self.push(d);
        }
        if let (Some(policy), Some(ch)) = (self.cx.policy, &e.channel) {
            self.channel(policy, ch);
        }
        Some(Escalation {
            ladder: e.ladder.as_ref().map(|l| l.value.clone()),
            after_action_unresolved: e
                .after_action_unresolved
                .as_ref()
                .and_then(|d| self.duration(d)),
            channel: e.channel.as_ref().map(|c| c.value.clone()),
        })
    }

    fn channel(&mut self, policy: &Policy, ch: &SString) {
        if !policy.channels.contains_key(&ch.value) {
            let known: Vec<_> = policy.channels.keys().cloned().collect();
            let d = self
                .at(
                    "unknown-channel",
                    format!("unknown notification channel `{}`", ch.value),
                    ch.referenced,
                )
                .help(format!("policy.yaml defines: {}", known.join(", ")));
            self.push(d);
        }
    }

    fn duration(&mut self, d: &SString) -> Option<Duration> {
        match parse_duration(&d.value) {
            Ok(v) => Some(v),
            Err(msg) => {
                let diag = self.at("bad-duration", msg, d.referenced);
                self.push(diag);
                None
            }
        }
    }

    // ---- pass 3/4: steps ---------------------------------------------------------------

    fn symptoms(&mut self) -> Vec<Symptom> {
        let raw = self.raw;
        raw.symptoms
            .iter()
            .map(|s| {
                if let Some(w) = &s.when {
                    self.expression(w, Site::Other);
                }
                Symptom {
                    id: s.id.value.clone(),
                    text: s.text.clone(),
                    when: s.when.as_ref().map(|w| w.value.clone()),
                }
            })
            .collect()
    }

    fn compile_checks(&mut self) -> Vec<Check> {
        let raw = self.raw;
        raw.checks.iter().filter_map(|c| self.check(c)).collect()
    }

    fn check(&mut self, c: &'a RawCheck) -> Option<Check> {
        let kind = ProbeKind::from_name(&c.probe.value);
        if kind.is_none() {
            let names: Vec<_> = ProbeKind::ALL.iter().map(|k| k.name()).collect();
            let mut d = self.at(
                "unknown-probe",
                format!("unknown probe `{}`", c.probe.value),
                c.probe.referenced,
            );
            d = match suggest(&c.probe.value, names.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("probes: {}", names.join(", "))),
            };
            self.push(d);
        }
        let empty = Spanned::new(
            Node::Map(Vec::new()),
            c.probe.referenced,
            c.probe.referenced,
        );
        let with = c.with.as_ref().unwrap_or(&empty);
        if let Some(kind) = kind
            && let Err(e) = kind.check_params(with)
        {
            let loc = e.location.unwrap_or(with.referenced);
            let d = self
                .at(
                    "bad-probe-param",
                    format!("probe `{}`: {}", kind.name(), e.message),
                    loc,
                )
                .help(format!("see `runbook probe --help {}`", kind.name()));
            self.push(d);
        }
        let mut deps: Vec<String> = Vec::new();
        let mut strings = Vec::new();
        Node::strings(with, &mut strings);
        for s in strings {
            if let Node::Str(text) = &s.value
                && is_template(text)
            {
                let refs = self.template(text, s.referenced, Site::Check);
                deps.extend(refs.checks);
            }
        }
        self.check_secret_targets(with);
        if let Some(w) = &c.when {
            deps.extend(self.expression(w, Site::Check).checks);
        }
        let sampled = c.sample.is_some();
        if let Some(e) = &c.expect {
            let site = kind.map_or(Site::ExpectUnknownProbe, |k| Site::Expect(k, sampled));
            deps.extend(self.expression(e, site).checks);
        }
        for a in &c.after {
            if self.check_names.contains(&a.value.as_str()) {
                deps.push(a.value.clone());
            } else {
                let d = self.unknown(
                    "unknown-check",
                    "check",
                    &a.value,
                    a.referenced,
                    a.value.as_str(),
                );
                self.push(d);
            }
        }
        let timeout = c
            .timeout
            .as_ref()
            .map_or(Some(DEFAULT_CHECK_TIMEOUT), |t| self.duration(t));
        let sample = c.sample.as_ref().and_then(|s| self.sample(s, &mut deps));
        let mut seen = HashSet::new();
        deps.retain(|d| seen.insert(d.clone()));
        Some(Check {
            id: c.id.value.clone(),
            title: c.title.clone(),
            probe: kind?,
            with: with.value.to_json(),
            expect: c.expect.as_ref().map(|e| e.value.clone()),
            when: c.when.as_ref().map(|e| e.value.clone()),
            after: c.after.iter().map(|a| a.value.clone()).collect(),
            timeout: timeout?,
            sample,
            guidance: c.guidance.clone(),
            deps,
        })
    }

    /// `sample: {times, every}`; a templated `every` (`{{ params.sustain_every }}`) is
    /// rendered when the check runs, and the checks it reads become dependencies.
    fn sample(&mut self, s: &RawSample, deps: &mut Vec<String>) -> Option<Sample> {
        if !(2..=100).contains(&s.times.value) {
            let d = self.at(
                "bad-sample",
                format!("`sample.times` is {}; take 2 to 100 samples", s.times.value),
                s.times.referenced,
            );
            self.push(d);
        }
        let every = if is_template(&s.every.value) {
            let refs = self.template(&s.every.value, s.every.referenced, Site::Check);
            deps.extend(refs.checks);
            DurationParam::Template(s.every.value.clone())
        } else {
            DurationParam::Fixed(self.duration(&s.every)?)
        };
        Some(Sample {
            times: s.times.value,
            every,
        })
    }

    fn compile_causes(&mut self) -> Vec<Cause> {
        let raw = self.raw;
        raw.causes.iter().map(|c| self.cause(c)).collect()
    }

    fn cause(&mut self, c: &RawCause) -> Cause {
        let refs = self.expression(&c.when, Site::Cause);
        // A `when` reading only other causes is fine: they observe.
        if !refs.observes && refs.causes.is_empty() && !refs.broken {
            let d = self
                .at(
                    "unreachable-cause",
                    format!("cause `{}` depends on no check, symptom or alert, so it is never matched or always matched", c.id.value),
                    c.when.referenced,
                )
                .help("make `when` read what a check observed, e.g. `checks.healthz.failed`");
            self.push(d);
        }
        for r in &c.remedy {
            if !self.actions.contains_key(r.value.as_str()) {
                let d = self.unknown("unknown-action", "action", &r.value, r.referenced, &r.value);
                self.push(d);
            }
        }
        for v in &c.verify {
            self.verify_ref(v);
        }
        if let Some(level) = &c.escalate {
            self.level(level);
        }
        Cause {
            id: c.id.value.clone(),
            title: c.title.clone(),
            when: c.when.value.clone(),
            remedy: c.remedy.iter().map(|r| r.value.clone()).collect(),
            verify: c.verify.iter().map(|r| r.value.clone()).collect(),
            guidance: c.guidance.clone(),
            escalate: c.escalate.as_ref().map(|e| e.value.clone()),
            checks: refs
                .checks
                .into_iter()
                .chain(refs.causes.into_iter().map(|c| format!("causes.{c}")))
                .collect(),
        }
    }

    fn level(&mut self, level: &SString) {
        let Some(policy) = self.cx.policy else { return };
        let ladder = self
            .raw
            .escalation
            .as_ref()
            .and_then(|e| e.ladder.as_ref().map(|l| l.value.clone()))
            .or_else(|| {
                policy
                    .severities
                    .get(&self.raw.severity.value)
                    .and_then(|s| s.ladder.clone())
            });
        let Some(ladder) = ladder.and_then(|l| policy.ladders.get(&l)) else {
            return;
        };
        if !ladder.levels.iter().any(|l| l.id == level.value) {
            let ids: Vec<_> = ladder.levels.iter().map(|l| l.id.as_str()).collect();
            let d = self
                .at(
                    "unknown-level",
                    format!("unknown escalation level `{}`", level.value),
                    level.referenced,
                )
                .help(format!("levels of this ladder: {}", ids.join(", ")));
            self.push(d);
        }
    }

    fn verify_ref(&mut self, v: &SString) {
        if !self.check_names.contains(&v.value.as_str()) {
            let d = self.unknown("unknown-check", "check", &v.value, v.referenced, &v.value);
            self.push(d);
        }
    }

    fn compile_actions(&mut self) -> Vec<Action> {
        let raw = self.raw;
        raw.actions.iter().filter_map(|a| self.action(a)).collect()
    }

    #[expect(clippy::too_many_lines, reason = "one match arm per action form")]
    fn action(&mut self, a: &RawAction) -> Option<Action> {
        let mut forms: Vec<(ActionKind, Location)> = Vec::new();
        if let Some(r) = &a.run {
            forms.push((ActionKind::Run, r.referenced));
        }
        if let Some(s) = &a.shell {
            forms.push((ActionKind::Shell, s.referenced));
        }
        if let Some(x) = &a.http {
            forms.push((ActionKind::Http, x.referenced));
        }
        if let Some(x) = &a.systemd {
            forms.push((ActionKind::Systemd, x.referenced));
        }
        if let Some(x) = &a.set_env {
            forms.push((ActionKind::SetEnv, x.referenced));
        }
        if let Some(x) = &a.backup {
            forms.push((ActionKind::Backup, x.referenced));
        }
        if let Some(x) = &a.restore {
            forms.push((ActionKind::Restore, x.referenced));
        }
        if let Some(x) = &a.notify {
            forms.push((ActionKind::Notify, x.referenced));
        }
        let names: Vec<_> = ActionKind::ALL.iter().map(|k| k.name()).collect();
        // In source order, so a message about a second form points at the later one.
        forms.sort_by_key(|(_, loc)| (loc.line(), loc.column()));
        if forms.len() != 1 {
            let (msg, loc) = if forms.is_empty() {
                (
                    format!(
                        "action `{}` does nothing: give one of {}",
                        a.id.value,
                        names.join(", ")
                    ),
                    a.id.referenced,
                )
            } else {
                let given: Vec<_> = forms
                    .iter()
                    .map(|(k, _)| format!("`{}`", k.name()))
                    .collect();
                (
                    format!(
                        "action `{}` has several forms ({}); give exactly one",
                        a.id.value,
                        given.join(", ")
                    ),
                    forms[1].1,
                )
            };
            let d = match forms.get(1) {
                Some((k, _)) => Diagnostic::error("action-form", msg)
                    .at(self.src, self.src.span_before(loc, k.name()))
                    .label("second form"),
                None => self.at("action-form", msg, loc),
            };
            self.push(d);
            return None;
        }
        let kind = forms[0].0;

        // Templates: references and syntax.
        let mut templates: Vec<&SString> = Vec::new();
        if let Some(r) = &a.run {
            templates.extend(r.value.iter());
            if r.value.is_empty() {
                let d = self.at(
                    "action-form",
                    "`run` needs at least the program",
                    r.referenced,
                );
                self.push(d);
            }
        }
        if let Some(x) = &a.http {
            templates.extend(x.value.templates());
            let strings: Vec<Spanned<Node>> = x
                .value
                .templates()
                .into_iter()
                .map(|s| Spanned::new(Node::Str(s.value.clone()), s.referenced, s.referenced))
                .collect();
            let strings: Vec<&Spanned<Node>> = strings.iter().collect();
            self.secret_to_alert_host(
                x.value.token_file.is_some(),
                &strings,
                &[("url", &x.value.url)],
            );
            if let Some(tf) = &x.value.token_file {
                self.token_file_from_alert(tf);
            }
        }
        if let Some(x) = &a.systemd {
            templates.extend(x.value.templates());
        }
        if let Some(x) = &a.set_env {
            templates.extend(x.value.templates());
        }
        if let Some(x) = &a.backup {
            templates.extend(x.value.templates());
        }
        if let Some(x) = &a.restore {
            templates.extend(x.value.templates());
        }
        if let Some(x) = &a.notify {
            templates.extend(x.value.templates());
            if let Some(policy) = self.cx.policy {
                self.channel(policy, &x.value.channel);
            }
        }
        if let Some(ap) = &a.approve {
            templates.push(&ap.prompt);
        }
        if let Some(cwd) = &a.cwd {
            templates.push(cwd);
        }
        let mut tainted_run = Vec::new();
        for t in &templates {
            if is_template(&t.value) {
                let refs = self.template(&t.value, t.referenced, Site::Other);
                if refs.tainted {
                    tainted_run.push(*t);
                }
            }
        }

        // Shell safety.
        let script_arg = a.run.as_ref().and_then(|r| shell_script_index(&r.value));
        let runs_shell = kind == ActionKind::Shell || script_arg.is_some();
        if let Some(script) = &a.shell
            && is_template(&script.value)
        {
            let d = self
                .at_in(
                    "shell-template",
                    "`{{ }}` inside a shell script would be interpreted by the shell",
                    script.referenced,
                    "{{",
                )
                .help("pass the value through `env:` and use \"$NAME\" in the script");
            self.push(d);
        }
        // In `sh -c SCRIPT NAME ARGS...` only SCRIPT is shell text; ARGS arrive as "$1"...
        if let (Some(r), Some(i)) = (&a.run, script_arg) {
            if let Some(arg) = r.value.get(i) {
                if is_template(&arg.value) {
                    let d = self
                        .at_in(
                            "shell-template",
                            "a template inside a `sh -c` script would be interpreted by the shell",
                            arg.referenced,
                            "{{",
                        )
                        .help("pass the value through `env:` and use \"$NAME\" in the script");
                    self.push(d);
                }
            }
        }
        for (key, value) in &a.env {
            if is_template(&value.value) {
                let refs = self.template(&value.value, value.referenced, Site::Other);
                if refs.tainted && runs_shell {
                    let d = self
                        .at("shell-taint", format!("env `{key}` takes a value from the alert into a shell script"), value.referenced)
                        .help("alert labels are untrusted input: pass them as `run:` argv elements instead");
                    self.push(d);
                }
            }
        }
        if runs_shell {
            for t in tainted_run {
                let d = self
                    .at("shell-taint", "a value from the alert would reach a shell", t.referenced)
                    .help("alert labels are untrusted input: pass them as `run:` argv elements instead");
                self.push(d);
            }
        } else if kind.mutating() {
            self.alert_chooses_target(&tainted_run);
        }
        if let Some(cwd) = &a.cwd
            && !matches!(kind, ActionKind::Run | ActionKind::Shell)
        {
            let d = self.at(
                "action-form",
                format!("`cwd` applies to `run` and `shell`, not `{}`", kind.name()),
                cwd.referenced,
            );
            self.push(d);
        }
        if !a.env.is_empty() && !matches!(kind, ActionKind::Run | ActionKind::Shell) {
            let (k, _) = a.env.first().expect("not empty");
            let loc = a.env.get(k).map_or(a.id.referenced, |v| v.referenced);
            let d = self.at(
                "action-form",
                format!("`env` applies to `run` and `shell`, not `{}`", kind.name()),
                loc,
            );
            self.push(d);
        }

        for v in &a.verify {
            self.verify_ref(v);
        }
        for id in a.rollback.iter().flat_map(|rb| rb.value.0.iter()) {
            let loc = a
                .rollback
                .as_ref()
                .map_or(a.id.referenced, |rb| rb.referenced);
            if *id == a.id.value {
                let d = self.at_in(
                    "graph-cycle",
                    format!("action `{id}` names itself as its rollback"),
                    loc,
                    id,
                );
                self.push(d);
            } else if !self.actions.contains_key(id.as_str()) {
                let d = self.unknown("unknown-action", "action", id, loc, id);
                self.push(d);
            }
        }
        let revert_after = a.revert_after.as_ref().and_then(|r| self.duration(r));
        if let Some(r) = &a.revert_after
            && a.rollback.as_ref().is_none_or(|r| r.value.0.is_empty())
        {
            let d = self
                .at(
                    "missing-rollback",
                    format!(
                        "temporary change `{}` has `revert_after` but no `rollback`",
                        a.id.value
                    ),
                    r.referenced,
                )
                .help("name the action that restores the previous value: `rollback: <action id>`");
            self.push(d);
        }
        let retry = a.retry.as_ref().and_then(|r| {
            if !(1..=20).contains(&r.attempts.value) {
                let d = self.at(
                    "bad-retry",
                    format!("`retry.attempts` is {}; allow 1 to 20", r.attempts.value),
                    r.attempts.referenced,
                );
                self.push(d);
            }
            self.duration(&r.backoff).map(|backoff| Retry {
                attempts: r.attempts.value,
                backoff,
            })
        });
        let limit = a.limit.as_ref().and_then(|l| {
            if l.max.value == 0 {
                let d = self.at(
                    "bad-limit",
                    "`limit.max` is 0: the action could never run",
                    l.max.referenced,
                );
                self.push(d);
            }
            self.duration(&l.per).map(|per| Limit {
                max: l.max.value,
                per,
            })
        });
        let approve = a.approve.as_ref().map(|ap| Approve {
            prompt: ap.prompt.value.clone(),
            timeout: ap
                .timeout
                .as_ref()
                .and_then(|t| self.duration(t))
                .unwrap_or(DEFAULT_APPROVE_TIMEOUT),
        });
        let timeout = a
            .timeout
            .as_ref()
            .map_or(Some(DEFAULT_ACTION_TIMEOUT), |t| self.duration(t));

        let form = if let Some(r) = &a.run {
            ActionForm::Run(r.value.iter().map(|s| s.value.clone()).collect())
        } else if let Some(s) = &a.shell {
            ActionForm::Shell(s.value.clone())
        } else if let Some(h) = &a.http {
            let h = &h.value;
            ActionForm::Http(crate::actions::http::HttpRequest {
                url: h.url.value.clone(),
                method: h.method.unwrap_or(crate::probes::http::HttpMethod::Post),
                headers: h
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect(),
                body: h.body.as_ref().map(|b| b.value.clone()),
                token_file: h.token_file.as_ref().map(|b| b.value.clone()),
                insecure: h.insecure,
                expect_status: h.expect_status.clone(),
            })
        } else if let Some(s) = &a.systemd {
            ActionForm::Systemd {
                unit: s.value.unit.value.clone(),
                op: s.value.op,
                systemctl: s.value.systemctl.as_ref().map(|p| p.value.clone()),
            }
        } else if let Some(s) = &a.set_env {
            ActionForm::SetEnv {
                file: s.value.file.value.clone(),
                key: s.value.key.value.clone(),
                value: s.value.value.value.clone(),
            }
        } else if let Some(b) = &a.backup {
            ActionForm::Backup {
                from: b.value.from.value.clone(),
                to: b.value.to.value.clone(),
            }
        } else if let Some(r) = &a.restore {
            ActionForm::Restore {
                from: r.value.from.value.clone(),
                to: r.value.to.value.clone(),
                backup: r.value.backup.as_ref().map(|b| b.value.clone()),
            }
        } else if let Some(n) = &a.notify {
            ActionForm::Notify {
                channel: n.value.channel.value.clone(),
                message: n.value.message.value.clone(),
            }
        } else {
            return None;
        };
        Some(Action {
            id: a.id.value.clone(),
            title: a.title.clone(),
            kind,
            form,
            cwd: a.cwd.as_ref().map(|c| c.value.clone()),
            env: a
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
            verify: a.verify.iter().map(|v| v.value.clone()).collect(),
            retry,
            limit,
            rollback: a
                .rollback
                .as_ref()
                .map(|r| r.value.0.clone())
                .unwrap_or_default(),
            revert_after,
            approve,
            timeout: timeout?,
            guidance: a.guidance.clone(),
        })
    }

    // ---- expressions and references ------------------------------------------------------

    fn expression(&mut self, e: &SString, site: Site) -> Refs {
        match expr::expression_refs(&e.value) {
            Ok(paths) => self.resolve(&paths, e.referenced, site),
            Err(err) => {
                let d = self.syntax("expression-syntax", &e.value, e.referenced, &err);
                self.push(d);
                Refs {
                    broken: true,
                    ..Refs::default()
                }
            }
        }
    }

    fn template(&mut self, text: &str, loc: Location, site: Site) -> Refs {
        match expr::template_refs(text) {
            Ok(paths) => self.resolve(&paths, loc, site),
            Err(err) => {
                let d = self.syntax("template-syntax", text, loc, &err);
                self.push(d);
                Refs {
                    broken: true,
                    ..Refs::default()
                }
            }
        }
    }

    fn syntax(
        &self,
        code: &'static str,
        text: &str,
        loc: Location,
        err: &expr::ExprError,
    ) -> Diagnostic {
        let base = self.src.span_within(loc, first_line(text));
        let base_matches = self
            .src
            .text
            .get(base.offset..)
            .is_some_and(|t| t.starts_with(first_line(text)));
        let span = match (&err.range, base_matches) {
            (Some(r), true) if text[..r.start.min(text.len())].find('\n').is_none() => {
                crate::runbook::diagnostic::Span {
                    offset: base.offset + r.start,
                    len: r.len().max(1),
                }
            }
            _ => base,
        };
        let what = if code == "template-syntax" {
            "template"
        } else {
            "expression"
        };
        Diagnostic::error(code, format!("{what} does not parse: {}", err.message))
            .at(self.src, span)
            .help(if code == "template-syntax" {
                "templates are minijinja: `{{ params.unit }}`"
            } else {
                "expressions are minijinja: `checks.healthz.ok and checks.sse_clients.value > 0`"
            })
    }

    fn unknown(
        &self,
        code: &'static str,
        kind: &str,
        name: &str,
        loc: Location,
        needle: &str,
    ) -> Diagnostic {
        let candidates: Vec<&str> = match kind {
            "check" => self.check_names.clone(),
            "cause" => self.causes.clone(),
            "action" => self.actions.keys().copied().collect(),
            "symptom" => self.symptoms.clone(),
            "param" => self.params.keys().copied().collect(),
            _ => Vec::new(),
        };
        let mut span = self.src.span_within(loc, needle);
        if needle.ends_with(name) && span.len == needle.len() {
            span.offset += needle.len() - name.len();
            span.len = name.len();
        }
        let d = Diagnostic::error(code, format!("unknown {kind} `{name}`")).at(self.src, span);
        match suggest(name, candidates.into_iter()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d,
        }
    }

    #[expect(clippy::too_many_lines, reason = "one arm per root")]
    fn resolve(&mut self, paths: &BTreeSet<String>, loc: Location, site: Site) -> Refs {
        let mut refs = Refs::default();
        for path in paths {
            let parts: Vec<&str> = path.split('.').collect();
            let root = parts[0];
            match root {
                "params" => {
                    if let Some(name) = parts.get(1) {
                        match self.params.get(name) {
                            None => {
                                let d = self.unknown(
                                    "unknown-param",
                                    "param",
                                    name,
                                    loc,
                                    &format!("params.{name}"),
                                );
                                self.push(d);
                            }
                            Some(true) => refs.tainted = true,
                            Some(false) => {}
                        }
                    }
                }
                "checks" => {
                    if matches!(
                        site,
                        Site::Cause | Site::Other | Site::Check | Site::Expect(..)
                    ) {
                        refs.observes = true;
                    }
                    let Some(id) = parts.get(1) else { continue };
                    if !self.check_names.contains(id) {
                        let d = self.unknown(
                            "unknown-check",
                            "check",
                            id,
                            loc,
                            &format!("checks.{id}"),
                        );
                        self.push(d);
                        continue;
                    }
                    refs.checks.push((*id).to_owned());
                    if let (Some(field), Some((kind, sampled))) =
                        (parts.get(2), self.checks.get(id).copied())
                        && !kind.has_field(field, sampled)
                    {
                        let fields = field_names(kind, sampled);
                        let mut d = self.at_in(
                            "unknown-field",
                            format!(
                                "check `{id}` (probe `{}`) has no field `{field}`",
                                kind.name()
                            ),
                            loc,
                            &format!("checks.{id}.{field}"),
                        );
                        d = match suggest(field, fields.iter().copied()) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help(format!("fields: {}", fields.join(", "))),
                        };
                        if !sampled && SAMPLE_FIELDS.contains(field) {
                            d = d.help(format!(
                                "`{field}` needs `sample: {{times, every}}` on check `{id}`"
                            ));
                        }
                        self.push(d);
                    }
                }
                "causes" => {
                    if matches!(
                        site,
                        Site::Check | Site::Expect(..) | Site::ExpectUnknownProbe
                    ) {
                        let d = self
                            .at_in("step-order", format!("a check cannot read `{path}`: checks run before causes are evaluated"), loc, path)
                            .help("move the condition to a cause's `when`");
                        self.push(d);
                        continue;
                    }
                    let Some(id) = parts.get(1) else { continue };
                    if !self.causes.contains(id) {
                        let d = self.unknown(
                            "unknown-cause",
                            "cause",
                            id,
                            loc,
                            &format!("causes.{id}"),
                        );
                        self.push(d);
                        continue;
                    }
                    refs.causes.push((*id).to_owned());
                    if let Some(field) = parts.get(2)
                        && !CAUSE_FIELDS.contains(field)
                    {
                        let d = self
                            .at_in(
                                "unknown-field",
                                format!("cause `{id}` has no field `{field}`"),
                                loc,
                                &format!("causes.{id}.{field}"),
                            )
                            .help(format!("fields: {}", CAUSE_FIELDS.join(", ")));
                        self.push(d);
                    }
                }
                "symptoms" => {
                    refs.observes = true;
                    let Some(id) = parts.get(1) else { continue };
                    if !self.symptoms.contains(id) {
                        let d = self.unknown(
                            "unknown-symptom",
                            "symptom",
                            id,
                            loc,
                            &format!("symptoms.{id}"),
                        );
                        self.push(d);
                        continue;
                    }
                    if let Some(field) = parts.get(2)
                        && !SYMPTOM_FIELDS.contains(field)
                    {
                        let d = self
                            .at_in(
                                "unknown-field",
                                format!("symptom `{id}` has no field `{field}`"),
                                loc,
                                &format!("symptoms.{id}.{field}"),
                            )
                            .help(format!("fields: {}", SYMPTOM_FIELDS.join(", ")));
                        self.push(d);
                    }
                }
                "alert" => {
                    refs.tainted = true;
                    refs.observes = true;
                    if let Some(field) = parts.get(1)
                        && !ALERT_FIELDS.contains(field)
                    {
                        let d = self
                            .at_in(
                                "unknown-field",
                                format!("`alert` has no field `{field}`"),
                                loc,
                                &format!("alert.{field}"),
                            )
                            .help(format!("fields: {}", ALERT_FIELDS.join(", ")));
                        self.push(d);
                    }
                }
                r if FREE_ROOTS.contains(&r) => {}
                _ if matches!(site, Site::ExpectUnknownProbe) => refs.observes = true,
                field => {
                    if let Site::Expect(kind, sampled) = site {
                        refs.observes = true;
                        if !kind.has_field(field, sampled) {
                            let fields = field_names(kind, sampled);
                            let mut d = self.at_in(
                                "unknown-field",
                                format!("probe `{}` has no result field `{field}`", kind.name()),
                                loc,
                                field,
                            );
                            d = match suggest(field, fields.iter().copied()) {
                                Some(s) => d.help(format!("did you mean `{s}`?")),
                                None => d.help(format!("fields: {}", fields.join(", "))),
                            };
                            if !sampled && SAMPLE_FIELDS.contains(&field) {
                                d = d.help(format!(
                                    "`{field}` needs `sample: {{times, every}}` on this check"
                                ));
                            }
                            self.push(d);
                        }
                    } else {
                        let roots = [
                            "params", "checks", "causes", "symptoms", "alert", "host", "now",
                        ];
                        let mut d = self.at_in(
                            "unknown-variable",
                            format!("unknown variable `{field}`"),
                            loc,
                            field,
                        );
                        d = match suggest(field, roots.iter().copied()) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help("expressions read `params`, `checks.<id>`, `causes.<id>`, `symptoms.<id>`, `alert`, `host`, `now`"),
                        };
                        self.push(d);
                    }
                }
            }
        }
        refs
    }

    // ---- pass 5: cycles --------------------------------------------------------------------

    fn check_cycles(&mut self, checks: &[Check]) {
        let edges: Vec<(String, Vec<String>)> = checks
            .iter()
            .map(|c| (c.id.clone(), c.deps.clone()))
            .collect();
        if let Some(cycle) = find_cycle(&edges) {
            let first = &cycle[0];
            let loc = self
                .raw
                .checks
                .iter()
                .find(|c| &c.id.value == first)
                .map_or_else(Location::default_loc, |c| c.id.referenced);
            let d = self
                .at("graph-cycle", format!("checks depend on each other in a cycle: {}", cycle.join(" → ")), loc)
                .help("a check may read only checks that do not read it back (via `when`, `expect`, templates or `after`)");
            self.push(d);
        }
    }

    fn cause_cycles(&mut self, causes: &[Cause]) {
        let edges: Vec<(String, Vec<String>)> = causes
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.checks
                        .iter()
                        .filter_map(|x| x.strip_prefix("causes.").map(str::to_owned))
                        .collect(),
                )
            })
            .collect();
        if let Some(cycle) = find_cycle(&edges) {
            let first = &cycle[0];
            let loc = self
                .raw
                .causes
                .iter()
                .find(|c| &c.id.value == first)
                .map_or_else(Location::default_loc, |c| c.id.referenced);
            let d = self.at(
                "graph-cycle",
                format!(
                    "causes depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
                loc,
            );
            self.push(d);
        }
    }

    // ---- pass 6: safety lint ---------------------------------------------------------------

    fn lint(&mut self, causes: &[Cause], actions: &[Action], has_escalation: bool) {
        let raw = self.raw;
        let by_id: HashMap<&str, &Action> = actions.iter().map(|a| (a.id.as_str(), a)).collect();
        for (cause, rc) in causes.iter().zip(&raw.causes) {
            let mutating: Vec<&&Action> = cause
                .remedy
                .iter()
                .filter_map(|r| by_id.get(r.as_str()))
                .filter(|a| a.mutating())
                .collect();
            let verified = !cause.verify.is_empty()
                || (!mutating.is_empty() && mutating.iter().all(|a| !a.verify.is_empty()));
            if !mutating.is_empty() && !verified {
                let loc = rc.remedy.first().map_or(rc.id.referenced, |r| r.referenced);
                let d = self
                    .at(
                        "missing-verify",
                        format!(
                            "cause `{}` runs a mutating remedy but has no `verify`",
                            cause.id
                        ),
                        loc,
                    )
                    .help(
                        "list the checks that must pass again after the fix: `verify: [healthz]`",
                    );
                self.push(d);
            }
            if mutating.is_empty() && !has_escalation && cause.escalate.is_none() {
                let d = self
                    .at("dead-end-cause", format!("cause `{}` can be matched but neither fixes nor escalates", cause.id), rc.id.referenced)
                    .help("give it a `remedy` with `verify`, or add an `escalation:` section to the runbook");
                self.push(d);
            }
        }
        let has_limit: HashSet<&str> = raw
            .actions
            .iter()
            .filter(|a| a.limit.is_some())
            .map(|a| a.id.value.as_str())
            .collect();
        let ids: HashMap<&str, Location> = raw
            .actions
            .iter()
            .map(|a| (a.id.value.as_str(), a.id.referenced))
            .collect();
        for action in actions {
            if action.mutating() && !has_limit.contains(action.id.as_str()) {
                let loc = ids
                    .get(action.id.as_str())
                    .copied()
                    .unwrap_or(Location::UNKNOWN);
                let d = self
                    .at("missing-limit", format!("mutating action `{}` has no `limit`", action.id), loc)
                    .help("bound how often it may run, across processes: `limit: { max: 3, per: 1h }`");
                self.push(d);
            }
        }
        // Actions nobody uses are suspicious, not wrong.
        let used: HashSet<&str> = causes
            .iter()
            .flat_map(|c| c.remedy.iter().map(String::as_str))
            .chain(
                actions
                    .iter()
                    .flat_map(|a| a.rollback.iter().map(String::as_str)),
            )
            .collect();
        for ra in &raw.actions {
            if !used.contains(ra.id.value.as_str()) {
                let d = self
                    .at(
                        "unused-action",
                        format!(
                            "action `{}` is not in any `remedy` or `rollback`",
                            ra.id.value
                        ),
                        ra.id.referenced,
                    )
                    .warning();
                self.push(d);
            }
        }
    }
}

trait DefaultLoc {
    fn default_loc() -> Location;
}
impl DefaultLoc for Location {
    fn default_loc() -> Location {
        Location::UNKNOWN
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    let end = line.char_indices().nth(24).map_or(line.len(), |(i, _)| i);
    &line[..end]
}

/// The fields a check of this probe has, each once.
fn field_names(kind: ProbeKind, sampled: bool) -> Vec<&'static str> {
    let mut fields: Vec<&'static str> = COMMON_FIELDS.to_vec();
    let extra = kind
        .fields()
        .iter()
        .chain(if sampled { SAMPLE_FIELDS } else { &[] });
    for f in extra {
        if !fields.contains(f) {
            fields.push(f);
        }
    }
    fields
}

/// A runbook name: kebab-case.
#[must_use]
pub fn is_runbook_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
}

/// Whether `text` reads a field of the alert (`alert.labels.x`, `alert.annotations.y`, ...).
fn mentions_alert(text: &str) -> bool {
    text.match_indices("alert.").any(|(i, _)| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '/')
    })
}

/// Whether `text` reads `params.<name>` (followed by anything but an identifier character).
fn mentions_param(text: &str, name: &str) -> bool {
    let needle = format!("params.{name}");
    text.match_indices(&needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A step id: `snake_case`, usable in expressions.
#[must_use]
pub fn is_step_id(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_alert_path(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    match parts.as_slice() {
        ["alert", "labels" | "annotations", name] => !name.is_empty(),
        [
            "alert",
            "fingerprint" | "status" | "starts_at" | "receiver" | "name",
        ] => true,
        _ => false,
    }
}

/// When argv runs a shell with `-c`, the index of the script argument.
fn shell_script_index(argv: &[SString]) -> Option<usize> {
    let base = argv.first()?.value.rsplit('/').next().unwrap_or("");
    if !matches!(
        base,
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "busybox"
    ) {
        return None;
    }
    argv.iter()
        .position(|a| {
            a.value == "-c"
                || (a.value.starts_with('-') && !a.value.starts_with("--") && a.value.contains('c'))
        })
        .map(|i| i + 1)
}

/// The closest candidate by edit distance, if close enough.
#[must_use]
pub fn suggest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of two neighbours as one edit (`stauts` → `status`).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The first cycle in a dependency list, as a path that returns to its start.
#[must_use]
pub fn find_cycle(edges: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = edges
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    let mut state = vec![0u8; edges.len()]; // 0 new, 1 on stack, 2 done
    let mut stack: Vec<usize> = Vec::new();
    for n in 0..edges.len() {
        if state[n] == 0
            && let Some(c) = visit(n, edges, &index, &mut state, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

fn visit(
    n: usize,
    edges: &[(String, Vec<String>)],
    index: &HashMap<&str, usize>,
    state: &mut [u8],
    stack: &mut Vec<usize>,
) -> Option<Vec<String>> {
    state[n] = 1;
    stack.push(n);
    for dep in &edges[n].1 {
        let Some(&m) = index.get(dep.as_str()) else {
            continue;
        };
        if state[m] == 1 {
            let start = stack.iter().position(|&x| x == m).unwrap_or(0);
            let mut cycle: Vec<String> =
                stack[start..].iter().map(|&i| edges[i].0.clone()).collect();
            cycle.push(edges[m].0.clone());
            return Some(cycle);
        }
        if state[m] == 0
            && let Some(c) = visit(m, edges, index, state, stack)
        {
            return Some(c);
        }
    }
    stack.pop();
    state[n] = 2;
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::diagnostic::Severity;

    fn codes(yaml: &str) -> Vec<&'static str> {
        let src = SourceFile::new("t.yaml", yaml);
        let raw: RawRunbook = crate::runbook::load::parse(&src).expect("parses");
        let (_, diags) = compile(&src, &raw, Context::default());
        diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.code)
            .collect()
    }

    const HEAD: &str = "runbook: t\ntitle: T\nseverity: P1\nparams:\n  unit: { type: name, default: x }\n  inst: { type: name, from: alert.labels.instance }\nchecks:\n  - id: up\n    probe: tcp\n    with: { host: 127.0.0.1, port: 1 }\ncauses:\n  - id: down\n    title: Down\n    when: checks.up.failed\n    remedy: [fix]\n    verify: [up]\nactions:\n  - id: fix\n    limit: { max: 1, per: 1h }\n";

    #[test]
    fn shell_script_argument_may_not_be_a_template_but_positional_args_may() {
        let script =
            format!("{HEAD}    run: [sh, -c, 'systemctl restart {{{{ params.unit }}}}']\n");
        assert_eq!(codes(&script), ["shell-template"]);
        let positional = format!(
            "{HEAD}    run: [sh, -c, 'systemctl restart \"$1\"', sh, '{{{{ params.unit }}}}']\n"
        );
        assert!(codes(&positional).is_empty(), "{:?}", codes(&positional));
        let plain = format!("{HEAD}    run: [systemctl, restart, '{{{{ params.unit }}}}']\n");
        assert!(codes(&plain).is_empty());
    }

    fn warnings(yaml: &str) -> Vec<&'static str> {
        let src = SourceFile::new("t.yaml", yaml);
        let raw: RawRunbook = crate::runbook::load::parse(&src).expect("parses");
        let (_, diags) = compile(&src, &raw, Context::default());
        diags
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn an_alert_choosing_what_a_mutating_action_changes_is_called_out() {
        let argv = format!("{HEAD}    run: [systemctl, restart, '{{{{ params.inst }}}}']\n");
        assert!(codes(&argv).is_empty(), "{:?}", codes(&argv));
        assert_eq!(warnings(&argv), ["alert-chooses-target"]);
        let unit =
            format!("{HEAD}    systemd: {{ op: restart, unit: '{{{{ alert.labels.unit }}}}' }}\n");
        assert_eq!(warnings(&unit), ["alert-chooses-target"]);
        // A fixed value, or a param the alert does not set: nothing to say.
        let fixed = format!("{HEAD}    run: [systemctl, restart, '{{{{ params.unit }}}}']\n");
        assert!(warnings(&fixed).is_empty(), "{:?}", warnings(&fixed));
        // A notification may quote the alert.
        let notify = format!(
            "{HEAD}    notify: {{ channel: ops, message: 'down on {{{{ params.inst }}}}' }}\n"
        );
        assert!(!warnings(&notify).contains(&"alert-chooses-target"));
    }

    #[test]
    fn alert_values_never_reach_a_shell() {
        let env = format!(
            "{HEAD}    shell: 'systemctl restart \"$U\"'\n    env: {{ U: '{{{{ params.inst }}}}' }}\n"
        );
        assert_eq!(codes(&env), ["shell-taint"]);
        let direct = format!(
            "{HEAD}    shell: 'true'\n    env: {{ U: '{{{{ alert.labels.instance }}}}' }}\n"
        );
        assert_eq!(codes(&direct), ["shell-taint"]);
        let argv = format!("{HEAD}    run: [systemctl, restart, '{{{{ params.inst }}}}']\n");
        assert!(codes(&argv).is_empty(), "argv elements are not shell text");
    }

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(
            suggest("helthz", ["healthz", "token"].into_iter()),
            Some("healthz")
        );
        assert_eq!(suggest("zzz", ["healthz"].into_iter()), None);
        assert_eq!(
            suggest("stauts", ["state", "status"].into_iter()),
            Some("status")
        );
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let edges = vec![
            ("a".to_owned(), vec!["b".to_owned()]),
            ("b".to_owned(), vec!["c".to_owned()]),
            ("c".to_owned(), vec!["a".to_owned()]),
        ];
        assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
        assert!(find_cycle(&[("a".to_owned(), vec![])]).is_none());
    }
}
