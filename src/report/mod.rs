//! Renderings of runbooks and runs: the step graph (Mermaid, Graphviz dot) and the run
//! reporters (console, JSON).

mod console;
mod graph;
mod json;

pub use console::ConsoleReporter;
pub use graph::{GraphFormat, render_graph};
pub use json::JsonReporter;
