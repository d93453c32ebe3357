//! Renderings of runbooks and runs for people: the step graph (Mermaid, Graphviz dot).

mod graph;

pub use graph::{GraphFormat, render_graph};
