//! The step graph as Mermaid or Graphviz dot: checks (by wave), causes, remedies,
//! verification and escalation.

use std::fmt::Write as _;

use crate::plan::Plan;

/// Output formats of `runbook graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz dot.
    Dot,
}

struct Edge {
    from: String,
    to: String,
    label: Option<String>,
    dashed: bool,
}

struct Node {
    id: String,
    label: String,
    shape: Shape,
    group: usize,
}

#[derive(Clone, Copy)]
enum Shape {
    Check,
    Cause,
    Action,
    Escalation,
}

/// Render a plan's step graph.
#[must_use]
#[expect(clippy::too_many_lines, reason = "one node kind after another")]
pub fn render_graph(plan: &Plan, format: GraphFormat) -> String {
    let mut nodes: Vec<Node> = Vec::new();
    let mut edges: Vec<Edge> = Vec::new();
    for (w, wave) in plan.waves.iter().enumerate() {
        for c in wave {
            nodes.push(Node {
                id: format!("check_{}", c.id),
                label: format!("{}\\n{}", c.id, c.probe),
                shape: Shape::Check,
                group: w + 1,
            });
            for dep in &c.after {
                edges.push(Edge {
                    from: format!("check_{dep}"),
                    to: format!("check_{}", c.id),
                    label: None,
                    dashed: false,
                });
            }
        }
    }
    let referenced = |expr: &str, id: &str| {
        let needle = format!("checks.{id}");
        expr.match_indices(&needle).any(|(i, _)| {
            let rest = &expr[i + needle.len()..];
            !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let has_escalation = plan.escalation.is_some();
    for cause in &plan.causes {
        let cid = format!("cause_{}", cause.id);
        nodes.push(Node {
            id: cid.clone(),
            label: format!("{}\\n{}", cause.id, cause.title),
            shape: Shape::Cause,
            group: 0,
        });
        for c in plan.checks() {
            if referenced(&cause.when, &c.id) {
                edges.push(Edge {
                    from: format!("check_{}", c.id),
                    to: cid.clone(),
                    label: None,
                    dashed: false,
                });
            }
        }
        let mut prev = cid.clone();
        for (i, a) in cause.remedy.iter().enumerate() {
            let aid = format!("action_{}_{}", cause.id, a.id);
            let gate = if a.mutating { " (mutating)" } else { "" };
            nodes.push(Node {
                id: aid.clone(),
                label: format!("{}\\n{}{gate}", a.id, a.kind),
                shape: Shape::Action,
                group: 0,
            });
            edges.push(Edge {
                from: prev.clone(),
                to: aid.clone(),
                label: Some(format!("remedy {}", i + 1)),
                dashed: false,
            });
            for v in &a.verify {
                edges.push(Edge {
                    from: aid.clone(),
                    to: format!("check_{v}"),
                    label: Some("verify".into()),
                    dashed: true,
                });
            }
            prev = aid;
        }
        for v in &cause.verify {
            edges.push(Edge {
                from: prev.clone(),
                to: format!("check_{v}"),
                label: Some("verify".into()),
                dashed: true,
            });
        }
        if cause.remedy.iter().all(|a| !a.mutating) && (has_escalation || cause.escalate.is_some())
        {
            let label = cause.escalate.clone().unwrap_or_else(|| "escalate".into());
            edges.push(Edge {
                from: prev,
                to: "escalation".into(),
                label: Some(label),
                dashed: false,
            });
        } else if has_escalation {
            edges.push(Edge {
                from: cid,
                to: "escalation".into(),
                label: Some("unresolved".into()),
                dashed: true,
            });
        }
    }
    if let Some(e) = &plan.escalation {
        let levels: Vec<String> = e
            .levels
            .iter()
            .map(|l| format!("{} {}", l.id, l.name))
            .collect();
        let ladder = e.ladder.clone().unwrap_or_else(|| "escalation".into());
        let label = if levels.is_empty() {
            ladder
        } else {
            format!("{ladder}\\n{}", levels.join(" → "))
        };
        nodes.push(Node {
            id: "escalation".into(),
            label,
            shape: Shape::Escalation,
            group: 0,
        });
    }
    match format {
        GraphFormat::Mermaid => mermaid(plan, &nodes, &edges),
        GraphFormat::Dot => dot(plan, &nodes, &edges),
    }
}

fn mermaid(plan: &Plan, nodes: &[Node], edges: &[Edge]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---\ntitle: {}\n---\nflowchart TD", plan.runbook);
    let waves = nodes.iter().map(|n| n.group).max().unwrap_or(0);
    for w in 1..=waves {
        let _ = writeln!(out, "  subgraph wave{w}[\"checks, wave {w}\"]");
        for n in nodes.iter().filter(|n| n.group == w) {
            let _ = writeln!(out, "    {}", mermaid_node(n));
        }
        let _ = writeln!(out, "  end");
    }
    for n in nodes.iter().filter(|n| n.group == 0) {
        let _ = writeln!(out, "  {}", mermaid_node(n));
    }
    for e in edges {
        let arrow = if e.dashed { "-.->" } else { "-->" };
        match &e.label {
            Some(l) => {
                let _ = writeln!(out, "  {} {arrow}|{}| {}", e.from, mermaid_escape(l), e.to);
            }
            None => {
                let _ = writeln!(out, "  {} {arrow} {}", e.from, e.to);
            }
        }
    }
    out
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;").replace("\\n", "<br/>")
}

fn mermaid_node(n: &Node) -> String {
    let label = mermaid_escape(&n.label);
    match n.shape {
        Shape::Check => format!("{}[\"{label}\"]", n.id),
        Shape::Cause => format!("{}{{\"{label}\"}}", n.id),
        Shape::Action => format!("{}([\"{label}\"])", n.id),
        Shape::Escalation => format!("{}[[\"{label}\"]]", n.id),
    }
}

fn dot(plan: &Plan, nodes: &[Node], edges: &[Edge]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];",
        plan.runbook
    );
    let waves = nodes.iter().map(|n| n.group).max().unwrap_or(0);
    for w in 1..=waves {
        let _ = writeln!(
            out,
            "  subgraph cluster_wave{w} {{\n    label=\"checks, wave {w}\";"
        );
        for n in nodes.iter().filter(|n| n.group == w) {
            let _ = writeln!(out, "    {}", dot_node(n));
        }
        let _ = writeln!(out, "  }}");
    }
    for n in nodes.iter().filter(|n| n.group == 0) {
        let _ = writeln!(out, "  {}", dot_node(n));
    }
    for e in edges {
        let mut attrs = Vec::new();
        if let Some(l) = &e.label {
            attrs.push(format!("label=\"{}\"", l.replace('"', "\\\"")));
        }
        if e.dashed {
            attrs.push("style=dashed".into());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  \"{}\" -> \"{}\"{attrs};", e.from, e.to);
    }
    out.push_str("}\n");
    out
}

fn dot_node(n: &Node) -> String {
    let shape = match n.shape {
        Shape::Check => "box",
        Shape::Cause => "diamond",
        Shape::Action => "box, style=rounded",
        Shape::Escalation => "doubleoctagon",
    };
    format!(
        "\"{}\" [label=\"{}\", shape={shape}];",
        n.id,
        n.label.replace('"', "\\\"")
    )
}
