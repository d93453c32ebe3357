//! The HTML post-mortem as a person opens it: a real run of a seed runbook against the Aurora
//! simulator (the live feed down, restarted, verified), `runbook report --format html` into a
//! file, that file in headless Chromium. It must load with no console error and no request at
//! all past the file itself, show the run's steps in order with their statuses, and draw the
//! step graph; the screenshot is saved for a human to look at.

mod browser;
mod sim_case;

use std::process::Command;

use browser::Browser;
use runbook::sim::Fault;
use serde_json::Value;
use sim_case::SimCase;

/// `runbook --runbooks .. --db .. ARGS`: (exit code, stdout).
fn cli(case: &SimCase, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("--runbooks")
        .arg(case.runbooks())
        .arg("--db")
        .arg(case.db())
        .args(args)
        .env_remove("RUNBOOK_DIR")
        .env_remove("RUNBOOK_DB")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_html_report_of_a_remediated_run_loads_clean_and_shows_its_steps() {
    let case = SimCase::start(&[Fault::Down]);
    let mut args: Vec<String> = ["--format", "json", "run", "sse-not-connecting", "--yes"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let text = std::fs::read_to_string(case.runbooks().join("sse-not-connecting.yaml")).unwrap();
    for (k, v) in case.sim().params() {
        if text.contains(&format!("\n  {k}: {{")) {
            args.push("--set".into());
            args.push(format!("{k}={v}"));
        }
    }
    args.extend(["--answer".into(), "dashboard_token=yes".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = cli(&case, &args);
    assert_eq!(code, 0, "{out}");
    let run: Value = serde_json::from_str(&out).unwrap();
    let id = run["run_id"].as_str().unwrap();
    let expected: Vec<(String, String, String)> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_owned(),
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    let html = case.db().with_file_name("report.html");
    let html_arg = html.to_string_lossy().into_owned();
    let (code, out) = cli(&case, &["report", id, "--format", "html", "-o", &html_arg]);
    assert_eq!(code, 0, "{out}");

    let b = Browser::start();
    let page = b.open(&format!("file://{}", html.display()), "report-remediated");
    assert!(page.errors.is_empty(), "console errors: {:?}", page.errors);
    assert!(
        page.screenshot.is_file(),
        "no screenshot at {}",
        page.screenshot.display()
    );
    assert!(
        page.external_requests().is_empty(),
        "{:?}",
        page.external_requests()
    );
    // Nothing but the file itself was fetched: no stylesheet, font, script or image (the
    // browser's own `chrome:` and `data:` pages aside).
    let fetched: Vec<&String> = page
        .requests
        .iter()
        .filter(|u| !u.starts_with("chrome:") && !u.starts_with("data:"))
        .collect();
    assert_eq!(fetched, [&format!("file://{}", html.display())]);

    let shown = b.script(
        "return [...document.querySelectorAll('details.step')]\
         .map(d => [d.dataset.stepKind, d.dataset.stepId, d.dataset.status])",
    );
    let shown: Vec<(String, String, String)> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_owned(),
                r[1].as_str().unwrap().to_owned(),
                r[2].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(shown, expected);
    // The graph is drawn and coloured: the restarted service's check failed, its remedy ran.
    let classes = b.script(
        "return ['node-check-service_active', 'node-cause-service_down', 'node-action-restart_service']\
         .map(id => document.getElementById(id)?.getAttribute('class'))",
    );
    assert!(
        classes[0].as_str().unwrap().contains("status-failed"),
        "{classes}"
    );
    assert!(
        classes[1].as_str().unwrap().contains("status-matched"),
        "{classes}"
    );
    assert!(
        classes[2].as_str().unwrap().contains("status-ok"),
        "{classes}"
    );
    let drawn = b.script(
        "const r = document.querySelector('#graph svg').getBoundingClientRect(); return [r.width, r.height]",
    );
    assert!(
        drawn[0].as_f64().unwrap() > 200.0 && drawn[1].as_f64().unwrap() > 100.0,
        "{drawn}"
    );
}
