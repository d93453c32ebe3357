//! The step graph as one self-contained SVG document, optionally coloured by a run's step
//! statuses: `runbook graph --format svg` prints it plain, and the HTML post-mortem report and
//! the dashboard embed it with each step's status from the audit trail.
//!
//! **Graph.** The same edges as the Mermaid/dot renderer (`graph.rs`): a check's `after`
//! dependencies, a check into each cause whose `when` reads it, a cause into its first remedy
//! and each remedy into the next (`remedy N`), remedies into verification (dashed), and the
//! last step of a cause into escalation (`escalate`, or dashed `unresolved`). Two departures,
//! both so that every step the executor records has exactly one node to colour: verification
//! re-runs are nodes of their own (`verify:ID`, the executor's `verify` steps) instead of
//! arrows back to the first-run check, and an action shared by several causes is one node
//! with an arrow from each. Escalation is one node per level of the ladder, chained by dashed
//! `after DURATION` arrows; a cause points at the level it names in `escalate`, else the first
//! level (or `L1` when no policy supplies a ladder, as the executor does).
//!
//! **Layout.** Columns left to right: checks by wave (wave 1, wave 2, ...), causes, remedy
//! actions, verification checks, escalation levels; an empty column is left out. Within a
//! column, nodes keep plan order (first appearance for actions and verification) and the
//! column is centred vertically against the tallest one. Every node has the same size, so
//! nodes never overlap; arrows between columns are horizontal Bézier curves, arrows within a
//! column (a remedy chain, the ladder) bulge out to its right. A legend of node kinds (and,
//! when statuses are given, of status colours) sits below. Coordinates are integers computed
//! from the plan alone: the same plan and statuses give the same bytes.
//!
//! **Nodes.** Each is `<g id="node-KIND-ID" class="node KIND status-S" data-key="KIND:ID">`
//! holding a `<title>` (the full text, a tooltip), a `<rect class="box">` (the node's
//! bounds), and two lines of text: the id, and the probe / cause title / action kind /
//! level name, cut with `…` past [`MAX_CHARS`]. KIND is `check`, `cause`, `action`, `verify`
//! or `escalation`; S is the status from the map (lower-cased, characters other than
//! `[a-z0-9_-]` as `_`) or `none`. Shapes follow `graph.rs`: checks and verification square
//! boxes, causes with a diamond, actions pills, escalation levels a double outline.
//!
//! **Document.** No XML declaration and no DOCTYPE: UTF-8 is XML's default, so the string
//! is a valid standalone `.svg` file and can equally be pasted into HTML as inline `<svg>`.
//! No external fonts (a generic monospace stack), scripts, images or id references (arrow
//! heads are drawn, not markers). The inline `<style>` scopes every rule under
//! `.runbook-graph`, the root's class, so an inline copy styles nothing else on the page and
//! the page can override it.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use indexmap::IndexMap;

use crate::plan::{Plan, PlannedCheck};

/// Characters shown on a node's line before it is cut with an ellipsis.
pub const MAX_CHARS: usize = 27;

const NODE_W: i32 = 220;
const NODE_H: i32 = 44;
const COL_GAP: i32 = 88;
const ROW_GAP: i32 = 16;
const MARGIN: i32 = 24;
const TITLE_H: i32 = 28;
const HEAD_H: i32 = 28;
const ARC: i32 = 36;
const ARROW: i32 = 7;
const PAD_X: i32 = 12;
const MAX_TITLE_CHARS: usize = 100;

/// Advance width of `n` monospace characters at `px` pixels (0.6 em, rounded up).
fn text_width(n: usize, px: i32) -> i32 {
    let n = i32::try_from(n).unwrap_or(i32::MAX / 16);
    (n * px * 3 + 4) / 5
}

const STYLE: &str = "\
.runbook-graph{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"Liberation Mono\",\"DejaVu Sans Mono\",monospace;font-size:12px}
.runbook-graph .bg{fill:#ffffff}
.runbook-graph .title{font-size:14px;font-weight:700;fill:#0f172a}
.runbook-graph .head{font-size:11px;fill:#64748b}
.runbook-graph .node,.runbook-graph .swatch{color:#334155}
.runbook-graph .box{fill:#ffffff;stroke:currentColor;stroke-width:1.5}
.runbook-graph .inner{fill:none;stroke:currentColor;stroke-width:1}
.runbook-graph .mark{fill:currentColor}
.runbook-graph .id{font-weight:700;fill:#0f172a}
.runbook-graph .sub{fill:#475569}
.runbook-graph .node:hover .box{stroke-width:2.5}
.runbook-graph .status-ok{color:#16a34a}
.runbook-graph .status-ok .box{fill:#dcfce7}
.runbook-graph .status-failed,.runbook-graph .status-error{color:#dc2626}
.runbook-graph .status-failed .box,.runbook-graph .status-error .box{fill:#fee2e2}
.runbook-graph .status-matched{color:#d97706}
.runbook-graph .status-matched .box{fill:#fef3c7}
.runbook-graph .status-ruled_out,.runbook-graph .status-absent,.runbook-graph .status-skipped{color:#94a3b8}
.runbook-graph .status-ruled_out .box,.runbook-graph .status-absent .box,.runbook-graph .status-skipped .box{fill:#f1f5f9}
.runbook-graph .status-ruled_out text,.runbook-graph .status-absent text,.runbook-graph .status-skipped text{fill:#64748b}
.runbook-graph .status-needs_approval,.runbook-graph .status-rate_limited{color:#2563eb}
.runbook-graph .status-needs_approval .box,.runbook-graph .status-rate_limited .box{fill:#dbeafe}
.runbook-graph .status-unknown{color:#475569}
.runbook-graph .status-unknown .box{stroke-dasharray:5 3}
.runbook-graph .status-dry_run{color:#7c3aed}
.runbook-graph .status-dry_run .box{fill:#f5f3ff;stroke-dasharray:2 2}
.runbook-graph .edge path{fill:none;stroke:#94a3b8;stroke-width:1.25}
.runbook-graph .edge.dashed path{stroke-dasharray:5 4}
.runbook-graph .edge .arrow{fill:#94a3b8}
.runbook-graph .edge text{font-size:10px;fill:#475569;stroke:#ffffff;stroke-width:3px;stroke-linejoin:round;paint-order:stroke}
.runbook-graph .legend text{font-size:11px;fill:#475569}
";

/// The kinds of node, named as the status keys and the executor's step kinds name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Check,
    Cause,
    Action,
    Verify,
    Escalation,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Check => "check",
            Kind::Cause => "cause",
            Kind::Action => "action",
            Kind::Verify => "verify",
            Kind::Escalation => "escalation",
        }
    }
}

struct Node {
    kind: Kind,
    id: String,
    sub: String,
    tip: String,
    column: usize,
}

#[derive(PartialEq, Eq)]
struct Edge {
    from: usize,
    to: usize,
    label: Option<String>,
    dashed: bool,
}

/// Nodes keyed by kind and id (one node per step), and the arrows between them.
#[derive(Default)]
struct Graph {
    nodes: IndexMap<(Kind, String), Node>,
    edges: Vec<Edge>,
    headers: Vec<String>,
}

impl Graph {
    /// The node's index, adding it when it is new.
    fn add(&mut self, node: Node) -> usize {
        let entry = self.nodes.entry((node.kind, node.id.clone()));
        let i = entry.index();
        entry.or_insert(node);
        i
    }

    fn find(&self, kind: Kind, id: &str) -> Option<usize> {
        self.nodes.get_index_of(&(kind, id.to_owned()))
    }

    fn edge(&mut self, from: usize, to: usize, label: Option<&str>, dashed: bool) {
        let e = Edge {
            from,
            to,
            label: label.map(str::to_owned),
            dashed,
        };
        if !self.edges.contains(&e) {
            self.edges.push(e);
        }
    }
}

/// Render a plan's step graph as an SVG document, each node coloured by its status.
///
/// `status`: a node's status by key `check:ID`, `cause:ID`, `action:ID`, `verify:ID`,
/// `escalation:ID`; values are the executor's status names (`ok`, `failed`, `error`,
/// `skipped`, `unknown`, `matched`, `ruled_out`, `absent`, `needs_approval`, `rate_limited`,
/// `dry_run`). Empty: the plain graph (`runbook graph`). `verify:ID` is a verification re-run of check `ID`;
/// `escalation:ID` is a ladder level (`L1`), the `level` of the executor's escalation step.
/// Keys that name no node are ignored.
#[must_use]
pub fn render_svg(plan: &Plan, status: &BTreeMap<String, String>) -> String {
    let graph = build(plan);
    Picture::lay_out(plan, &graph, !status.is_empty()).draw(&graph, status)
}

/// Whether expression `expr` reads check `id` (`checks.ID` not followed by more of an id):
/// the rule `graph.rs` draws a check → cause arrow by.
fn reads_check(expr: &str, id: &str) -> bool {
    let needle = format!("checks.{id}");
    expr.match_indices(&needle).any(|(i, _)| {
        !expr[i + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn check_tip(kind: &str, c: Option<&PlannedCheck>, id: &str) -> String {
    let mut tip = format!("{kind} {id}");
    if let Some(c) = c {
        let _ = write!(tip, "\nprobe: {}", c.probe);
        if let Some(w) = &c.when {
            let _ = write!(tip, "\nwhen: {w}");
        }
        if let Some(e) = &c.expect {
            let _ = write!(tip, "\nexpect: {e}");
        }
    }
    tip
}

#[expect(
    clippy::too_many_lines,
    reason = "one node kind after another, as in graph.rs"
)]
fn build(plan: &Plan) -> Graph {
    let mut g = Graph::default();
    let waves = plan.waves.len();
    let (causes_col, actions_col, verify_col, levels_col) =
        (waves, waves + 1, waves + 2, waves + 3);
    g.headers = (1..=waves).map(|w| format!("checks, wave {w}")).collect();
    let ladder = plan.escalation.as_ref().and_then(|e| e.ladder.clone());
    g.headers.extend([
        "causes".to_owned(),
        "remedies".to_owned(),
        "verification".to_owned(),
        ladder
            .as_ref()
            .map_or_else(|| "escalation".to_owned(), |l| format!("escalation, {l}")),
    ]);

    for (w, wave) in plan.waves.iter().enumerate() {
        for c in wave {
            g.add(Node {
                kind: Kind::Check,
                id: c.id.clone(),
                sub: c.probe.to_owned(),
                tip: check_tip("check", Some(c), &c.id),
                column: w,
            });
        }
    }
    for c in plan.checks() {
        for dep in &c.after {
            if let (Some(from), Some(to)) = (g.find(Kind::Check, dep), g.find(Kind::Check, &c.id)) {
                g.edge(from, to, None, false);
            }
        }
    }

    let ladder_name = ladder.clone().unwrap_or_else(|| "escalation".to_owned());
    let mut first_level = "L1".to_owned();
    if let Some(e) = &plan.escalation {
        let mut prev = None;
        for l in &e.levels {
            let i = g.add(Node {
                kind: Kind::Escalation,
                id: l.id.clone(),
                sub: l.name.clone(),
                tip: format!(
                    "escalation level {}\n{}\nladder: {ladder_name}\nafter {} unresolved",
                    l.id, l.name, l.after_unresolved
                ),
                column: levels_col,
            });
            if let Some(p) = prev {
                g.edge(p, i, Some(&format!("after {}", l.after_unresolved)), true);
            }
            prev = Some(i);
        }
        if let Some(l) = e.levels.first() {
            first_level.clone_from(&l.id);
        }
    }

    let verify_node = |g: &mut Graph, id: &str| {
        let check = plan.checks().find(|c| c.id == id);
        g.add(Node {
            kind: Kind::Verify,
            id: id.to_owned(),
            sub: check.map_or_else(|| "re-run".to_owned(), |c| format!("re-run, {}", c.probe)),
            tip: check_tip("verification re-run of check", check, id),
            column: verify_col,
        })
    };
    let has_escalation = plan.escalation.is_some();
    for cause in &plan.causes {
        let ci = g.add(Node {
            kind: Kind::Cause,
            id: cause.id.clone(),
            sub: cause.title.clone(),
            tip: format!("cause {}\n{}\nwhen: {}", cause.id, cause.title, cause.when),
            column: causes_col,
        });
        for c in plan.checks() {
            if reads_check(&cause.when, &c.id)
                && let Some(from) = g.find(Kind::Check, &c.id)
            {
                g.edge(from, ci, None, false);
            }
        }
        let mut prev = ci;
        for (n, a) in cause.remedy.iter().enumerate() {
            let gate = if a.mutating { " (mutating)" } else { "" };
            let ai = g.add(Node {
                kind: Kind::Action,
                id: a.id.clone(),
                sub: format!("{}{gate}", a.kind),
                tip: format!("action {}\n{}{gate}\n{}", a.id, a.kind, a.summary),
                column: actions_col,
            });
            g.edge(prev, ai, Some(&format!("remedy {}", n + 1)), false);
            for v in &a.verify {
                let vi = verify_node(&mut g, v);
                g.edge(ai, vi, Some("verify"), true);
            }
            prev = ai;
        }
        for v in &cause.verify {
            let vi = verify_node(&mut g, v);
            g.edge(prev, vi, Some("verify"), true);
        }
        let escalates = cause.remedy.iter().all(|a| !a.mutating)
            && (has_escalation || cause.escalate.is_some());
        if escalates || has_escalation {
            let level = cause
                .escalate
                .clone()
                .unwrap_or_else(|| first_level.clone());
            let li = g.add(Node {
                kind: Kind::Escalation,
                id: level.clone(),
                sub: ladder_name.clone(),
                tip: format!("escalation level {level}\nladder: {ladder_name}"),
                column: levels_col,
            });
            if escalates {
                let label = cause.escalate.as_deref().unwrap_or("escalate");
                g.edge(prev, li, Some(label), false);
            } else {
                g.edge(ci, li, Some("unresolved"), true);
            }
        }
    }
    g
}

/// Where everything goes: node corners by node index, each arrow's route, column headers,
/// the legend, the size.
struct Picture {
    title: String,
    tooltip: String,
    at: Vec<(i32, i32)>,
    routes: Vec<Route>,
    heads: Vec<(i32, String)>,
    legend_y: i32,
    with_status: bool,
    width: i32,
    height: i32,
}

/// A column's place: its left edge and the top of each node, top to bottom.
struct Column {
    x: i32,
    tops: Vec<i32>,
}

impl Column {
    /// The heights an arrow may cross the column at without touching a node: above the
    /// first node, between two, below the last.
    fn lanes(&self) -> impl Iterator<Item = i32> + '_ {
        let first = self.tops.first().map(|t| t - ROW_GAP / 2);
        first
            .into_iter()
            .chain(self.tops.iter().map(|t| t + NODE_H + ROW_GAP / 2))
    }
}

/// How an arrow is drawn: the path, the head (tip, and +1 pointing right or -1 left), and
/// where its label goes (x, baseline y, `text-anchor`).
struct Route {
    path: String,
    tip: (i32, i32),
    dir: i32,
    label: Option<(i32, i32, &'static str)>,
}

/// A cubic from `a` to `b`, leaving and arriving horizontally.
fn curve(path: &mut String, a: (i32, i32), b: (i32, i32)) {
    let dx = (b.0 - a.0) / 2;
    let _ = write!(
        path,
        " C{} {} {} {} {} {}",
        a.0 + dx,
        a.1,
        b.0 - dx,
        b.1,
        b.0,
        b.1
    );
}

/// The route of arrow `e`. Between columns: out of the source's right side, into the
/// target's left side; across a column in between, straight through the lane nearest the
/// direct line, so the arrow never passes behind a node it has nothing to do with. Within a
/// column: a loop out to the right.
fn route(g: &Graph, cols: &[Option<Column>], at: &[(i32, i32)], e: &Edge) -> Route {
    let (from, to) = (&g.nodes[e.from], &g.nodes[e.to]);
    let ((fx, fy), (tx, ty)) = (at[e.from], at[e.to]);
    let (fy, ty) = (fy + NODE_H / 2, ty + NODE_H / 2);
    match to.column.cmp(&from.column) {
        Ordering::Greater => forward(cols, (fx + NODE_W, fy), (tx, ty), from.column, to.column),
        Ordering::Equal => {
            let x = fx + NODE_W;
            let (fy, ty) = if ty > fy {
                (fy + 8, ty - 8)
            } else {
                (fy - 8, ty + 8)
            };
            Route {
                path: format!(
                    "M{x} {fy} C{} {fy} {} {ty} {} {ty}",
                    x + ARC,
                    x + ARC,
                    x + ARROW
                ),
                tip: (x, ty),
                dir: -1,
                // Right of the loop's outermost point (3/4 of ARC).
                label: Some((x + ARC * 3 / 4 + 3, (fy + ty) / 2 + 4, "start")),
            }
        }
        Ordering::Less => {
            // No plan draws one today; kept total: leave left, come in from the right.
            let (x0, x3) = (fx, tx + NODE_W + ARROW);
            Route {
                path: format!("M{x0} {fy} C{} {fy} {} {ty} {x3} {ty}", x0 - ARC, x3 + ARC),
                tip: (tx + NODE_W, ty),
                dir: -1,
                label: Some(((x0 + x3) / 2, (fy + ty) / 2 - 3, "middle")),
            }
        }
    }
}

/// An arrow from a source's right side `(x0, fy)` to the left side `(tx, ty)` of a node some
/// columns on, crossing the columns between through lanes.
fn forward(
    cols: &[Option<Column>],
    (x0, fy): (i32, i32),
    (tx, ty): (i32, i32),
    from_col: usize,
    to_col: usize,
) -> Route {
    let x3 = tx - ARROW;
    let mut pts = vec![(x0, fy)];
    for col in cols[from_col + 1..to_col].iter().flatten() {
        let mid = col.x + NODE_W / 2;
        let want = fy + (ty - fy) * (mid - x0) / (x3 - x0).max(1);
        let lane = col.lanes().min_by_key(|y| (y - want).abs()).unwrap_or(want);
        pts.extend([(col.x, lane), (col.x + NODE_W, lane)]);
    }
    pts.push((x3, ty));
    let mut path = format!("M{x0} {fy}");
    for (k, pair) in pts.windows(2).enumerate() {
        if k % 2 == 0 {
            curve(&mut path, pair[0], pair[1]);
        } else {
            let _ = write!(path, " H{}", pair[1].0);
        }
    }
    // On the first stretch, beside the source: the curve's midpoint.
    let (a, b) = (pts[0], pts[1]);
    Route {
        path,
        tip: (tx, ty),
        dir: 1,
        label: Some(((a.0 + b.0) / 2, (a.1 + b.1) / 2 - 3, "middle")),
    }
}

/// Legend entries: a node kind and its caption.
const KIND_LEGEND: [(Kind, &str); 5] = [
    (Kind::Check, "check"),
    (Kind::Cause, "cause"),
    (Kind::Action, "remedy action"),
    (Kind::Verify, "verification"),
    (Kind::Escalation, "escalation level"),
];

/// Legend entries: a status class and its caption.
const STATUS_LEGEND: [(&str, &str); 8] = [
    ("ok", "ok"),
    ("failed", "failed, error"),
    ("matched", "matched"),
    ("skipped", "skipped, ruled out, absent"),
    ("needs_approval", "needs approval, rate limited"),
    ("unknown", "unknown"),
    ("dry_run", "dry run"),
    ("none", "not run"),
];

const SWATCH_W: i32 = 28;
const SWATCH_H: i32 = 14;
const LEGEND_ROW: i32 = 24;
const LABEL_PX: i32 = 10;

/// Width of a legend row: swatch, gap, caption, gap, for each entry.
fn legend_width<'a>(captions: impl Iterator<Item = &'a str>) -> i32 {
    captions
        .map(|c| SWATCH_W + 6 + text_width(c.chars().count(), 11) + 18)
        .sum()
}

impl Picture {
    fn lay_out(plan: &Plan, g: &Graph, with_status: bool) -> Picture {
        let columns = g.headers.len();
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); columns];
        for (i, n) in g.nodes.values().enumerate() {
            rows[n.column].push(i);
        }
        let span = |n: usize| {
            let n = i32::try_from(n).unwrap_or(i32::MAX / (NODE_H + ROW_GAP) - 1);
            (n * (NODE_H + ROW_GAP) - ROW_GAP).max(0)
        };
        let body_h = rows.iter().map(|r| span(r.len())).max().unwrap_or(0);
        let top = MARGIN + TITLE_H + HEAD_H;
        let mut at = vec![(0, 0); g.nodes.len()];
        let mut cols: Vec<Option<Column>> = Vec::with_capacity(columns);
        let mut heads = Vec::new();
        let mut right = MARGIN;
        let mut x = MARGIN;
        for (c, row) in rows.iter().enumerate() {
            if row.is_empty() {
                cols.push(None);
                continue;
            }
            let y0 = top + (body_h - span(row.len())) / 2;
            let mut tops = Vec::with_capacity(row.len());
            for (r, &i) in row.iter().enumerate() {
                at[i] = (x, y0 + span(r + 1) - NODE_H);
                tops.push(at[i].1);
            }
            cols.push(Some(Column { x, tops }));
            heads.push((x, g.headers[c].clone()));
            right = right.max(x + NODE_W);
            x += NODE_W + COL_GAP;
        }
        let routes: Vec<Route> = g.edges.iter().map(|e| route(g, &cols, &at, e)).collect();
        for (e, r) in g.edges.iter().zip(&routes) {
            if g.nodes[e.from].column == g.nodes[e.to].column {
                right = right.max(at[e.from].0 + NODE_W + ARC);
            }
            if let (Some(l), Some((lx, _, anchor))) = (&e.label, r.label) {
                let w = text_width(truncate(l, MAX_CHARS).chars().count(), LABEL_PX);
                right = right.max(if anchor == "start" {
                    lx + w
                } else {
                    lx + w / 2
                });
            }
        }
        let full_title = format!("{}: {}", plan.runbook, plan.title);
        let title = truncate(&full_title, MAX_TITLE_CHARS);
        right = right.max(MARGIN + text_width(title.chars().count(), 14));
        right = right.max(MARGIN + legend_width(KIND_LEGEND.iter().map(|(_, c)| *c)));
        if with_status {
            right = right.max(MARGIN + legend_width(STATUS_LEGEND.iter().map(|(_, c)| *c)));
        }
        let legend_y = top + body_h + if body_h > 0 { 32 } else { 0 };
        let rows_in_legend = if with_status { 2 } else { 1 };
        Picture {
            title,
            tooltip: format!("step graph of runbook {full_title}"),
            at,
            routes,
            heads,
            legend_y,
            with_status,
            width: right + MARGIN,
            height: legend_y + (rows_in_legend - 1) * LEGEND_ROW + SWATCH_H + MARGIN,
        }
    }

    fn draw(&self, g: &Graph, status: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let (w, h) = (self.width, self.height);
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"runbook-graph\" width=\"{w}\" \
             height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
            esc(&self.tooltip)
        );
        let _ = writeln!(out, "<title>{}</title>", esc(&self.tooltip));
        let _ = writeln!(out, "<style>\n{STYLE}</style>");
        let _ = writeln!(
            out,
            "<rect class=\"bg\" x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\"/>"
        );
        let _ = writeln!(
            out,
            "<text class=\"title\" x=\"{MARGIN}\" y=\"{}\">{}</text>",
            MARGIN + 14,
            esc(&self.title)
        );
        for (x, head) in &self.heads {
            let _ = writeln!(
                out,
                "<text class=\"head\" x=\"{x}\" y=\"{}\">{}</text>",
                MARGIN + TITLE_H + 12,
                esc(&truncate(head, MAX_CHARS + 4))
            );
        }
        out.push_str("<g class=\"edges\">\n");
        for (e, r) in g.edges.iter().zip(&self.routes) {
            draw_edge(&mut out, g, e, r);
        }
        out.push_str("</g>\n<g class=\"nodes\">\n");
        for (i, n) in g.nodes.values().enumerate() {
            let key = format!("{}:{}", n.kind.name(), n.id);
            let st = status.get(&key).map(String::as_str);
            draw_node(&mut out, n, self.at[i], st);
        }
        out.push_str("</g>\n");
        self.draw_legend(&mut out);
        out.push_str("</svg>\n");
        out
    }

    fn draw_legend(&self, out: &mut String) {
        out.push_str("<g class=\"legend\">\n");
        let mut x = MARGIN;
        let y = self.legend_y;
        for (kind, caption) in KIND_LEGEND {
            let _ = writeln!(out, "<g class=\"swatch {}\">", kind.name());
            shape(out, kind, (x, y), (SWATCH_W, SWATCH_H));
            out.push_str("</g>\n");
            caption_at(out, x, y, caption);
            x += SWATCH_W + 6 + text_width(caption.chars().count(), 11) + 18;
        }
        if self.with_status {
            let (mut x, y) = (MARGIN, y + LEGEND_ROW);
            for (st, caption) in STATUS_LEGEND {
                let _ = writeln!(out, "<g class=\"swatch status-{st}\">");
                shape(out, Kind::Check, (x, y), (SWATCH_W, SWATCH_H));
                out.push_str("</g>\n");
                caption_at(out, x, y, caption);
                x += SWATCH_W + 6 + text_width(caption.chars().count(), 11) + 18;
            }
        }
        out.push_str("</g>\n");
    }
}

fn draw_edge(out: &mut String, g: &Graph, e: &Edge, route: &Route) {
    let key = |n: &Node| esc(&format!("{}:{}", n.kind.name(), n.id));
    let (from, to) = (key(&g.nodes[e.from]), key(&g.nodes[e.to]));
    let class = if e.dashed { "edge dashed" } else { "edge" };
    let _ = writeln!(
        out,
        "<g class=\"{class}\" data-from=\"{from}\" data-to=\"{to}\">"
    );
    let label = e
        .label
        .as_ref()
        .map(|l| format!(" ({})", esc(l)))
        .unwrap_or_default();
    let _ = writeln!(out, "<title>{from} → {to}{label}</title>");
    let _ = writeln!(out, "<path d=\"{}\"/>", route.path);
    let ((tip_x, tip_y), base) = (route.tip, route.tip.0 - route.dir * ARROW);
    let _ = writeln!(
        out,
        "<polygon class=\"arrow\" points=\"{tip_x},{tip_y} {base},{} {base},{}\"/>",
        tip_y - 4,
        tip_y + 4
    );
    if let (Some(l), Some((lx, ly, anchor))) = (&e.label, route.label) {
        let _ = writeln!(
            out,
            "<text x=\"{lx}\" y=\"{ly}\" text-anchor=\"{anchor}\">{}</text>",
            esc(&truncate(l, MAX_CHARS))
        );
    }
    out.push_str("</g>\n");
}

fn caption_at(out: &mut String, x: i32, y: i32, caption: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\">{}</text>",
        x + SWATCH_W + 6,
        y + SWATCH_H - 3,
        esc(caption)
    );
}

/// A node's outline: its bounds as `rect.box`, and the marks its kind adds.
fn shape(out: &mut String, kind: Kind, (x, y): (i32, i32), (w, h): (i32, i32)) {
    let rx = match kind {
        Kind::Action => h / 2,
        Kind::Cause => 8,
        Kind::Check | Kind::Verify | Kind::Escalation => 3,
    };
    let _ = writeln!(
        out,
        "<rect class=\"box\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"{rx}\"/>"
    );
    match kind {
        Kind::Cause => {
            let (cx, cy, half) = (x, y + h / 2, (h / 4).min(7));
            let _ = writeln!(
                out,
                "<polygon class=\"mark\" points=\"{},{cy} {cx},{} {},{cy} {cx},{}\"/>",
                cx - half,
                cy - half,
                cx + half,
                cy + half
            );
        }
        Kind::Escalation => {
            let _ = writeln!(
                out,
                "<rect class=\"inner\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\"/>",
                x + 3,
                y + 3,
                w - 6,
                h - 6
            );
        }
        Kind::Verify => {
            // A second left edge tells a re-run from a first run.
            let _ = writeln!(
                out,
                "<path class=\"inner\" d=\"M{} {} V{}\"/>",
                x + 4,
                y + 3,
                y + h - 3
            );
        }
        Kind::Check | Kind::Action => {}
    }
}

fn draw_node(out: &mut String, n: &Node, (x, y): (i32, i32), status: Option<&str>) {
    let kind = n.kind.name();
    let class = status.map_or_else(|| "none".to_owned(), status_class);
    let _ = writeln!(
        out,
        "<g id=\"node-{kind}-{}\" class=\"node {kind} status-{class}\" data-key=\"{kind}:{}\">",
        esc(&n.id),
        esc(&n.id)
    );
    let mut tip = n.tip.clone();
    if let Some(s) = status {
        let _ = write!(tip, "\nstatus: {s}");
    }
    let _ = writeln!(out, "<title>{}</title>", esc(&tip));
    shape(out, n.kind, (x, y), (NODE_W, NODE_H));
    let pad = if n.kind == Kind::Action {
        PAD_X + 4
    } else {
        PAD_X
    };
    let _ = writeln!(
        out,
        "<text class=\"id\" x=\"{}\" y=\"{}\">{}</text>",
        x + pad,
        y + 18,
        esc(&truncate(&n.id, MAX_CHARS))
    );
    let _ = writeln!(
        out,
        "<text class=\"sub\" x=\"{}\" y=\"{}\">{}</text>",
        x + pad,
        y + 34,
        esc(&truncate(&n.sub, MAX_CHARS))
    );
    out.push_str("</g>\n");
}

/// The CSS class suffix of a status: lower case, `[a-z0-9_-]` kept, anything else `_`.
fn status_class(status: &str) -> String {
    if status.is_empty() {
        return "none".to_owned();
    }
    status
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One line of at most `max` characters: whitespace runs as one space, cut with `…`.
fn truncate(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Text for XML content and attribute values alike; characters XML 1.0 forbids become U+FFFD.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlannedAction, PlannedCause, PlannedEscalation, PlannedLevel};

    fn check(id: &str, probe: &'static str, after: &[&str]) -> PlannedCheck {
        PlannedCheck {
            id: id.into(),
            probe,
            with: serde_json::Value::Null,
            when: None,
            expect: Some("status == 200".into()),
            timeout: "5s".into(),
            sample: None,
            after: after.iter().map(|s| (*s).to_owned()).collect(),
            at_run_time: false,
            guidance: None,
        }
    }

    fn action(id: &str, mutating: bool, verify: &[&str]) -> PlannedAction {
        PlannedAction {
            id: id.into(),
            kind: if mutating { "systemd" } else { "notify" },
            mutating,
            summary: "systemctl restart app".into(),
            at_run_time: false,
            approve: None,
            limit: None,
            retry: None,
            verify: verify.iter().map(|s| (*s).to_owned()).collect(),
            rollback: Vec::new(),
            revert_after: None,
            guidance: None,
        }
    }

    fn cause(id: &str, title: &str, when: &str, remedy: Vec<PlannedAction>) -> PlannedCause {
        PlannedCause {
            id: id.into(),
            title: title.into(),
            when: when.into(),
            remedy,
            verify: Vec::new(),
            escalate: None,
            guidance: None,
        }
    }

    fn plan() -> Plan {
        Plan {
            runbook: "app-down".into(),
            title: "App down".into(),
            severity: "P1".into(),
            service: None,
            source: None,
            params: Vec::new(),
            waves: vec![
                vec![check("healthz", "http", &[]), check("unit", "systemd", &[])],
                vec![check("ready", "http", &["healthz"])],
            ],
            symptoms: Vec::new(),
            causes: vec![
                cause(
                    "down",
                    "App is down",
                    "checks.healthz.failed and checks.unit.failed",
                    vec![
                        action("restart", true, &["healthz"]),
                        action("tell", false, &[]),
                    ],
                ),
                cause(
                    "stuck",
                    "Ready never comes",
                    "checks.ready.failed",
                    vec![action("tell", false, &["ready"])],
                ),
            ],
            escalation: Some(PlannedEscalation {
                ladder: Some("ops".into()),
                levels: vec![
                    PlannedLevel {
                        id: "L1".into(),
                        name: "On call".into(),
                        after_unresolved: "0s".into(),
                    },
                    PlannedLevel {
                        id: "L2".into(),
                        name: "Team lead".into(),
                        after_unresolved: "30m".into(),
                    },
                ],
                after_action_unresolved: None,
            }),
        }
    }

    /// The opening tag of the node group with this DOM id.
    fn group<'a>(svg: &'a str, id: &str) -> &'a str {
        let start = svg
            .find(&format!("<g id=\"{id}\""))
            .unwrap_or_else(|| panic!("no node `{id}` in\n{svg}"));
        let end = start + svg[start..].find('>').unwrap();
        &svg[start..=end]
    }

    fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_status_colours_its_node_only() {
        let svg = render_svg(&plan(), &statuses(&[("check:healthz", "failed")]));
        assert!(
            group(&svg, "node-check-healthz").contains("class=\"node check status-failed\""),
            "{}",
            group(&svg, "node-check-healthz")
        );
        assert!(group(&svg, "node-check-unit").contains("class=\"node check status-none\""));
        // The verification re-run of the same check is a node of its own, not coloured.
        assert!(group(&svg, "node-verify-healthz").contains("status-none"));
        assert!(
            svg.contains(
                ".runbook-graph .status-failed,.runbook-graph .status-error{color:#dc2626}"
            )
        );
        assert!(svg.contains("status: failed</title>"));
    }

    #[test]
    fn every_kind_takes_its_own_key() {
        let st = statuses(&[
            ("check:ready", "ok"),
            ("cause:down", "matched"),
            ("cause:stuck", "ruled_out"),
            ("action:restart", "needs_approval"),
            ("verify:healthz", "error"),
            ("escalation:L2", "matched"),
            ("action:nonexistent", "ok"),
        ]);
        let svg = render_svg(&plan(), &st);
        for (id, class) in [
            ("node-check-ready", "status-ok"),
            ("node-cause-down", "status-matched"),
            ("node-cause-stuck", "status-ruled_out"),
            ("node-action-restart", "status-needs_approval"),
            ("node-verify-healthz", "status-error"),
            ("node-escalation-L2", "status-matched"),
            ("node-escalation-L1", "status-none"),
            ("node-action-tell", "status-none"),
        ] {
            assert!(group(&svg, id).contains(class), "{id}: {}", group(&svg, id));
        }
        assert!(!svg.contains("nonexistent"));
    }

    #[test]
    fn status_legend_only_with_statuses() {
        let plain = render_svg(&plan(), &BTreeMap::new());
        assert!(!plain.contains("swatch status-ok"));
        assert!(plain.contains("swatch cause"));
        let coloured = render_svg(&plan(), &statuses(&[("check:unit", "unknown")]));
        assert!(coloured.contains("swatch status-ok"));
        assert!(coloured.contains(".status-unknown .box{stroke-dasharray:5 3}"));
        assert!(group(&coloured, "node-check-unit").contains("status-unknown"));
    }

    #[test]
    fn odd_statuses_become_safe_classes() {
        assert_eq!(status_class("Rate Limited\"<"), "rate_limited__");
        assert_eq!(status_class(""), "none");
        let svg = render_svg(&plan(), &statuses(&[("check:unit", "x\"><script>")]));
        assert!(group(&svg, "node-check-unit").contains("status-x___script_"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn shared_actions_and_verification_are_one_node_each() {
        let svg = render_svg(&plan(), &BTreeMap::new());
        assert_eq!(svg.matches("id=\"node-action-tell\"").count(), 1);
        assert_eq!(svg.matches("id=\"node-verify-healthz\"").count(), 1);
        assert!(svg.contains("data-from=\"cause:stuck\" data-to=\"action:tell\""));
        assert!(svg.contains("data-from=\"action:restart\" data-to=\"action:tell\""));
        // `down` ends in a mutating remedy: unresolved goes to the first level, dashed.
        assert!(svg.contains(
            "<g class=\"edge dashed\" data-from=\"cause:down\" data-to=\"escalation:L1\">"
        ));
        // `stuck` only notifies: its last step escalates.
        assert!(
            svg.contains("<g class=\"edge\" data-from=\"action:tell\" data-to=\"escalation:L1\">")
        );
        assert!(svg.contains("data-from=\"check:healthz\" data-to=\"check:ready\""));
        assert!(!svg.contains("data-from=\"check:ready\" data-to=\"cause:down\""));
    }

    #[test]
    fn columns_run_left_to_right() {
        let svg = render_svg(&plan(), &BTreeMap::new());
        let x = |id: &str| -> i32 {
            let rest = &svg[svg.find(&format!("<g id=\"{id}\"")).unwrap()..];
            let rest = &rest[rest.find(" x=\"").unwrap() + 4..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        };
        let order = [
            "node-check-healthz",
            "node-check-ready",
            "node-cause-down",
            "node-action-restart",
            "node-verify-healthz",
            "node-escalation-L1",
        ];
        for pair in order.windows(2) {
            assert!(x(pair[0]) < x(pair[1]), "{pair:?}");
        }
        assert_eq!(x("node-check-healthz"), x("node-check-unit"));
        assert_eq!(x("node-escalation-L1"), x("node-escalation-L2"));
    }

    #[test]
    fn text_is_escaped_and_long_lines_cut() {
        let mut p = plan();
        p.causes[0].title = "Fails when <a & b> say \"no\" and it's a very long title".into();
        p.causes[0].id = "d<&\">".into();
        let svg = render_svg(&p, &BTreeMap::new());
        assert!(svg.contains("id=\"node-cause-d&lt;&amp;&quot;&gt;\""));
        assert!(svg.contains(">Fails when &lt;a &amp; b&gt; say &quot;no…</text>"));
        assert!(svg.contains(
            "Fails when &lt;a &amp; b&gt; say &quot;no&quot; and it&#39;s a very long title\nwhen:"
        ));
        assert!(!svg.contains("<a "));
        assert_eq!(truncate("short", 27), "short");
        assert_eq!(truncate("a\n b", 27), "a b");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(esc("\u{1}x\u{FFFF}"), "\u{FFFD}x\u{FFFD}");
    }

    #[test]
    fn same_plan_same_bytes() {
        let st = statuses(&[("check:healthz", "ok")]);
        assert_eq!(render_svg(&plan(), &st), render_svg(&plan(), &st));
    }

    #[test]
    fn an_empty_plan_is_still_a_document() {
        let mut p = plan();
        p.waves.clear();
        p.causes.clear();
        p.escalation = None;
        let svg = render_svg(&p, &BTreeMap::new());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert!(!svg.contains("class=\"node "));
    }
}
