//! Renderings of runbooks and runs: the step graph (Mermaid, Graphviz dot, SVG) and the run
//! reporters (console, JSON).

mod console;
mod graph;
mod json;
pub mod postmortem;
pub mod svg;

pub use console::ConsoleReporter;
pub use graph::{GraphFormat, render_graph};
pub use json::JsonReporter;
pub use svg::render_svg;
