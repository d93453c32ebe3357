//! `shell`: run a script with `sh -c`. The script is fixed text: `{{ }}` inside it is a compile
//! error (`shell-template`), and dynamic values reach it only through `env:`, never from an
//! alert (`shell-taint`). Mutating.
//!
//! ```yaml
//! - id: rotate_logs
//!   shell: '"$SCRIPT"'
//!   env: { SCRIPT: "{{ params.rotate_script }}" }
//!   limit: { max: 1, per: 1h }
//! ```
