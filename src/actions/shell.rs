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

use crate::actions::run::{proc_spec, process_outcome};
use crate::host::Intent;

/// Run the action.
pub async fn execute(
    script: &str,
    cx: &crate::actions::ActionContext<'_>,
) -> crate::actions::ActionOutcome {
    let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()];
    let result = cx.host.spawn(&proc_spec(argv, cx), Intent::Mutate).await;
    process_outcome("shell script", result)
}
