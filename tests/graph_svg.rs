//! End-to-end tests of `runbook graph NAME --format svg`: every seed runbook gives one
//! well-formed, self-contained SVG document with a node for each step and no two boxes
//! overlapping; text is escaped; one runbook's picture is snapshotted.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The seed runbooks in `runbooks/`.
const SEEDS: usize = 13;
/// `svg::MAX_CHARS`: a node's line is cut past this many characters.
const MAX_CHARS: usize = 27;
const SVG_NS: &str = "http://www.w3.org/2000/svg";

fn runbook(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .current_dir(dir)
        .env_remove("RUNBOOK_DIR")
        .env_remove("RUNBOOK_DB")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("runbook runs")
}

fn seeds_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `runbook graph NAME --format svg` in `dir`: exits 0, prints UTF-8.
fn svg_of(dir: &Path, name: &str) -> String {
    let out = runbook(dir, &["graph", name, "--format", "svg"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "graph {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn json_of(args: &[&str]) -> Value {
    let out = runbook(seeds_dir(), args);
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn has_class(n: roxmltree::Node<'_, '_>, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|t| t == class))
}

fn num(n: roxmltree::Node<'_, '_>, attr: &str) -> i64 {
    n.attribute(attr)
        .unwrap_or_else(|| panic!("<{}> without {attr}", n.tag_name().name()))
        .parse()
        .unwrap_or_else(|e| panic!("{attr}: {e}"))
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

impl Rect {
    fn of(n: roxmltree::Node<'_, '_>) -> Rect {
        Rect {
            x: num(n, "x"),
            y: num(n, "y"),
            w: num(n, "width"),
            h: num(n, "height"),
        }
    }

    fn overlaps(self, o: Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

/// What every rendered graph must be, whatever the runbook: one `<svg>` root in the SVG
/// namespace sized to its viewBox, nothing external, every box inside the picture and
/// apart from every other, node lines cut to size, edges between existing nodes.
/// Returns the node keys (`check:ID`, ...).
fn check_document(name: &str, text: &str) -> BTreeSet<String> {
    assert!(text.starts_with("<svg "), "{name}: no prolog, <svg> first");
    let doc = roxmltree::Document::parse(text)
        .unwrap_or_else(|e| panic!("{name}: not well-formed XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{name}");
    assert_eq!(root.tag_name().namespace(), Some(SVG_NS), "{name}");
    let (w, h) = (num(root, "width"), num(root, "height"));
    assert_eq!(
        root.attribute("viewBox"),
        Some(format!("0 0 {w} {h}").as_str()),
        "{name}"
    );
    for n in doc.descendants().filter(roxmltree::Node::is_element) {
        let tag = n.tag_name().name();
        assert!(
            !["script", "image", "foreignObject", "use", "a"].contains(&tag),
            "{name}: <{tag}>"
        );
        assert!(
            n.attributes().all(|a| a.name() != "href"),
            "{name}: href on <{tag}>"
        );
        assert_eq!(n.tag_name().namespace(), Some(SVG_NS), "{name}: <{tag}>");
    }
    let style: String = doc
        .descendants()
        .filter(|n| n.has_tag_name("style"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        !style.contains("url(") && !style.contains("@import"),
        "{name}"
    );

    let nodes: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && has_class(*n, "node"))
        .collect();
    let mut keys = BTreeSet::new();
    let mut boxes = Vec::new();
    for g in &nodes {
        let key = g.attribute("data-key").expect("data-key").to_owned();
        let (kind, id) = key.split_once(':').expect("KIND:ID");
        assert_eq!(
            g.attribute("id"),
            Some(format!("node-{kind}-{id}").as_str())
        );
        assert!(has_class(*g, kind), "{name}: {key} lacks class {kind}");
        assert!(
            g.attribute("class")
                .unwrap()
                .split_whitespace()
                .any(|c| c.starts_with("status-")),
            "{name}: {key} has no status class"
        );
        assert!(
            g.children().any(|c| c.has_tag_name("title")),
            "{name}: {key} has no tooltip"
        );
        for t in g.children().filter(|c| c.has_tag_name("text")) {
            let line = t.text().unwrap_or_default();
            assert!(
                line.chars().count() <= MAX_CHARS,
                "{name}: {key}: line not cut: {line:?}"
            );
        }
        assert!(keys.insert(key.clone()), "{name}: {key} twice");
    }
    // Node boxes and legend swatches alike.
    for r in doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && has_class(*n, "box"))
    {
        let key = r
            .parent()
            .and_then(|p| p.attribute("data-key"))
            .unwrap_or("legend")
            .to_owned();
        boxes.push((key, Rect::of(r)));
    }
    assert!(boxes.len() > nodes.len(), "{name}: no legend");
    for (i, (ka, a)) in boxes.iter().enumerate() {
        assert!(
            a.x >= 0 && a.y >= 0 && a.x + a.w <= w && a.y + a.h <= h,
            "{name}: {ka} {a:?} outside {w}×{h}"
        );
        for (kb, b) in &boxes[i + 1..] {
            assert!(!a.overlaps(*b), "{name}: {ka} {a:?} overlaps {kb} {b:?}");
        }
    }
    for e in doc
        .descendants()
        .filter(|n| n.has_tag_name("g") && has_class(*n, "edge"))
    {
        for end in ["data-from", "data-to"] {
            let k = e.attribute(end).expect(end);
            assert!(keys.contains(k), "{name}: edge {end} {k} names no node");
        }
    }
    keys
}

/// The node keys a plan's steps must have.
fn expected_keys(plan: &Value) -> BTreeSet<String> {
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    };
    let mut want = BTreeSet::new();
    for wave in plan["waves"].as_array().unwrap() {
        for c in wave.as_array().unwrap() {
            want.insert(format!("check:{}", c["id"].as_str().unwrap()));
        }
    }
    for cause in plan["causes"].as_array().unwrap() {
        want.insert(format!("cause:{}", cause["id"].as_str().unwrap()));
        for v in ids(&cause["verify"]) {
            want.insert(format!("verify:{v}"));
        }
        for a in cause["remedy"].as_array().unwrap() {
            want.insert(format!("action:{}", a["id"].as_str().unwrap()));
            for v in ids(&a["verify"]) {
                want.insert(format!("verify:{v}"));
            }
        }
        if let Some(level) = cause["escalate"].as_str() {
            want.insert(format!("escalation:{level}"));
        }
    }
    if let Some(levels) = plan["escalation"]["levels"].as_array() {
        for l in levels {
            want.insert(format!("escalation:{}", l["id"].as_str().unwrap()));
        }
    }
    want
}

#[test]
fn every_seed_runbook_draws_a_well_formed_svg_with_every_step() {
    let list = json_of(&["list", "--format", "json"]);
    let list = list
        .as_array()
        .or_else(|| list["runbooks"].as_array())
        .expect("a list of runbooks");
    let names: Vec<&str> = list.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), SEEDS, "{names:?}");
    for name in names {
        let text = svg_of(seeds_dir(), name);
        let keys = check_document(name, &text);
        let plan = json_of(&["plan", name, "--format", "json"]);
        let want = expected_keys(&plan);
        let missing: Vec<_> = want.difference(&keys).collect();
        assert!(missing.is_empty(), "{name}: no node for {missing:?}");
        let extra: Vec<_> = keys.difference(&want).collect();
        assert!(extra.is_empty(), "{name}: nodes for no step: {extra:?}");
        assert_eq!(text, svg_of(seeds_dir(), name), "{name}: not deterministic");
    }
}

#[test]
fn titles_with_markup_characters_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        seeds_dir().join("runbooks/policy.yaml"),
        dir.path().join("policy.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("odd-titles.yaml"),
        r#"runbook: odd-titles
title: "Odd <&\"> 'titles'"
severity: P1
checks:
  - id: healthz
    probe: http
    with: { url: "http://127.0.0.1:1/healthz" }
    expect: "status == 200"
causes:
  - id: down
    title: "Down <b>&amp;</b> \"quoted\" </svg> and long"
    when: "checks.healthz.failed"
    remedy: [tell]
    escalate: L1
actions:
  - id: tell
    notify: { channel: ops, message: "down <&\">" }
escalation:
  ladder: p3d
"#,
    )
    .unwrap();
    let out = runbook(
        dir.path(),
        &["--runbooks", ".", "graph", "odd-titles", "--format", "svg"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    check_document("odd-titles", &text);
    assert!(!text.contains("<b>"), "{text}");
    assert_eq!(text.matches("</svg>").count(), 1, "{text}");

    let doc = roxmltree::Document::parse(&text).unwrap();
    let cause = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("node-cause-down"))
        .expect("node-cause-down");
    let tip = cause
        .children()
        .find(|c| c.has_tag_name("title"))
        .and_then(|t| t.text())
        .unwrap();
    // The tooltip reads back as written: escaped once, not twice, nothing lost.
    assert!(
        tip.contains("Down <b>&amp;</b> \"quoted\" </svg> and long"),
        "{tip:?}"
    );
    let lines: Vec<&str> = cause
        .children()
        .filter(|c| c.has_tag_name("text"))
        .filter_map(|t| t.text())
        .collect();
    assert_eq!(lines, ["down", "Down <b>&amp;</b> \"quoted\"…"]);
    let title = doc
        .root_element()
        .children()
        .find(|c| c.has_tag_name("text") && c.attribute("class") == Some("title"))
        .and_then(|t| t.text())
        .unwrap();
    assert_eq!(title, "odd-titles: Odd <&\"> 'titles'");
    let action = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("node-action-tell"))
        .expect("node-action-tell");
    let tip = action.first_element_child().and_then(|t| t.text()).unwrap();
    assert!(tip.contains("down <&\">"), "{tip:?}");
}

#[test]
fn svg_of_service_down() {
    let text = svg_of(seeds_dir(), "service-down");
    insta::assert_snapshot!(text);
}

#[test]
fn svg_is_a_graph_format_only() {
    let out = runbook(seeds_dir(), &["list", "--format", "svg"]);
    assert_eq!(out.status.code(), Some(2));
    let out = runbook(seeds_dir(), &["graph", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--format svg"), "{help}");
}
