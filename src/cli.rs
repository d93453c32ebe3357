//! Command-line definitions (clap). One variant per verb; each verb's code lives in
//! `commands/<verb>.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Runbook-as-code: run, test and audit operations runbooks.
#[derive(Debug, Parser)]
#[command(name = "runbook", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  runbook list\n  runbook validate runbooks/\n  runbook plan sse-not-connecting --set base_url=http://127.0.0.1:8001\n  runbook graph sse-not-connecting --format dot | dot -Tsvg > graph.svg"
)]
pub struct Cli {
    /// Directory of runbooks (default: $`RUNBOOK_DIR`, else ./runbooks).
    #[arg(long, global = true, env = "RUNBOOK_DIR", value_name = "DIR")]
    pub runbooks: Option<PathBuf>,
    /// Audit database (default: $`RUNBOOK_DB`, else the XDG state dir).
    #[arg(long, global = true, env = "RUNBOOK_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Output format: human, json; `validate` also takes github, `graph` mermaid or dot.
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,
    /// Colour: auto (a terminal, unless `NO_COLOR` is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Human,
    /// One JSON document.
    Json,
    /// GitHub workflow commands (`validate`).
    Github,
    /// Mermaid flowchart (`graph`).
    Mermaid,
    /// Graphviz dot (`graph`).
    Dot,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List runbooks with severity and triggers.
    #[command(after_help = "Example:\n  runbook list --runbooks runbooks/ --format json")]
    List,
    /// Check runbooks: syntax, references, graph, safety lint. Every problem in every file at once.
    #[command(
        after_help = "Examples:\n  runbook validate                       # every runbook in the runbook dir\n  runbook validate runbooks/x.yaml other/\n  runbook validate --format github       # annotations in a GitHub Actions log\n\nExit status: 0 valid, 2 invalid."
    )]
    Validate {
        /// Files or directories (default: the runbook dir).
        paths: Vec<PathBuf>,
    },
    /// Show the step graph in execution order, with templates rendered. Touches no host.
    #[command(
        after_help = "Example:\n  runbook plan sse-not-connecting --set base_url=http://127.0.0.1:8001 --set unit=aurora-live-feed"
    )]
    Plan {
        /// Runbook name.
        name: String,
        /// Set a parameter: `--set name=value` (repeatable).
        #[arg(long = "set", value_name = "K=V")]
        sets: Vec<String>,
    },
    /// Draw the step graph as Mermaid (default) or Graphviz dot.
    #[command(
        after_help = "Examples:\n  runbook graph sse-not-connecting > graph.mmd\n  runbook graph sse-not-connecting --format dot | dot -Tsvg > graph.svg"
    )]
    Graph {
        /// Runbook name.
        name: String,
        /// Set a parameter: `--set name=value` (repeatable).
        #[arg(long = "set", value_name = "K=V")]
        sets: Vec<String>,
    },
    /// Print the JSON Schema of the runbook format (for editors' YAML language servers).
    #[command(
        after_help = "Example:\n  runbook schema > schema/runbook.schema.json\n  # then in a runbook: # yaml-language-server: $schema=../schema/runbook.schema.json"
    )]
    Schema,
}
