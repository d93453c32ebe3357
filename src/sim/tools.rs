//! `runbook sim-tool --control URL PROGRAM ARGS...`: the programs of the simulated host
//! (`bin/systemctl` and the others are two-line scripts that call this). Each answers the
//! command lines the runbooks use, the way the real program does (output, exit code), by
//! asking the simulator's control endpoint; anything else is refused with exit 1 and a
//! message that says so.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

/// What a program printed and its exit code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ToolOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code.
    pub code: i32,
}

impl ToolOutput {
    fn out(stdout: impl Into<String>) -> Self {
        ToolOutput {
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    fn fail(code: i32, stderr: impl Into<String>) -> Self {
        ToolOutput {
            stderr: stderr.into(),
            code,
            ..Self::default()
        }
    }
}

/// Run `program args` against the simulator at `control`; prints and returns the exit code.
#[must_use]
pub fn main(control: &str, program: &str, args: &[String]) -> i32 {
    if program == "process" {
        // The process standing for a unit: lives until its stdin closes.
        let mut buf = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        return 0;
    }
    let out = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(control, program, args)),
        Err(e) => ToolOutput::fail(1, format!("{program}: cannot start: {e}\n")),
    };
    let _ = std::io::stdout().write_all(out.stdout.as_bytes());
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    out.code
}

/// The answer of `program args`, without printing.
pub async fn run(control: &str, program: &str, args: &[String]) -> ToolOutput {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => return ToolOutput::fail(1, format!("{program}: {e}\n")),
    };
    let base = control.trim_end_matches('/');
    let c = Ctl {
        client: &client,
        base,
        program,
    };
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let r = match program {
        "systemctl" => systemctl(&c, args, &words).await,
        "journalctl" => journalctl(&c, args).await,
        "nginx" if args.iter().any(|a| a == "-t") => c.exit_json(c.get("/nginx/test"), true).await,
        "ufw" if words.first() == Some(&"status") => {
            c.text(c.get("/ufw")).await.map(ToolOutput::out)
        }
        "chronyc" if words.first() == Some(&"tracking") => {
            c.exit_json(c.get("/chrony/tracking"), false).await
        }
        "timedatectl" => timedatectl(&c, args).await,
        "sysctl" => sysctl(&c, args).await,
        _ => Ok(ToolOutput::fail(
            1,
            format!(
                "{program}: the simulated host answers only what the runbooks run; not `{program} {}`\n",
                args.join(" ")
            ),
        )),
    };
    r.unwrap_or_else(|e| ToolOutput::fail(1, format!("{program}: {e}\n")))
}

struct Ctl<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    program: &'a str,
}

impl Ctl<'_> {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    async fn text(&self, req: reqwest::RequestBuilder) -> Result<String, String> {
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach the simulated host at {}: {e}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!(
                "{} answered {status}: {}",
                self.program,
                text.trim()
            ))
        }
    }

    /// `{"exit": N, "message": "..."}` → the message on stdout (or stderr) and the exit code.
    async fn exit_json(
        &self,
        req: reqwest::RequestBuilder,
        to_stderr: bool,
    ) -> Result<ToolOutput, String> {
        let v: Value = serde_json::from_str(&self.text(req).await?).map_err(|e| e.to_string())?;
        let code = i32::try_from(v["exit"].as_i64().unwrap_or(1)).unwrap_or(1);
        let mut message = v["message"].as_str().unwrap_or_default().to_owned();
        if !message.ends_with('\n') {
            message.push('\n');
        }
        Ok(if to_stderr || code != 0 {
            ToolOutput {
                stdout: String::new(),
                stderr: message,
                code,
            }
        } else {
            ToolOutput::out(message)
        })
    }
}

async fn systemctl(c: &Ctl<'_>, args: &[String], words: &[&str]) -> Result<ToolOutput, String> {
    let (Some(verb), Some(unit)) = (words.first(), words.get(1)) else {
        return Ok(ToolOutput::fail(1, "systemctl: give a verb and a unit\n"));
    };
    match *verb {
        "show" | "status" | "is-active" => {
            let text = c.text(c.get(&format!("/units/{unit}"))).await?;
            let props: Vec<&str> = args
                .iter()
                .filter_map(|a| a.strip_prefix("--property="))
                .flat_map(|p| p.split(','))
                .collect();
            let state = text
                .lines()
                .find_map(|l| l.strip_prefix("ActiveState="))
                .unwrap_or("unknown")
                .to_owned();
            Ok(match *verb {
                "is-active" => ToolOutput {
                    stdout: format!("{state}\n"),
                    stderr: String::new(),
                    code: if state == "active" { 0 } else { 3 },
                },
                "status" => ToolOutput {
                    stdout: format!("● {unit}.service\n     Active: {state}\n"),
                    stderr: String::new(),
                    code: if state == "active" { 0 } else { 3 },
                },
                _ => ToolOutput::out(text.lines().fold(String::new(), |mut acc, l| {
                    if props.is_empty()
                        || l.split_once('=').is_some_and(|(k, _)| props.contains(&k))
                    {
                        acc.push_str(l);
                        acc.push('\n');
                    }
                    acc
                })),
            })
        }
        "start" | "stop" | "restart" | "reload" => c
            .exit_json(c.post(&format!("/units/{unit}/{verb}")), true)
            .await
            .map(|mut o| {
                if o.code == 0 {
                    o.stderr.clear();
                }
                o
            }),
        other => Ok(ToolOutput::fail(
            1,
            format!("Unknown command verb '{other}'.\n"),
        )),
    }
}

async fn journalctl(c: &Ctl<'_>, args: &[String]) -> Result<ToolOutput, String> {
    let mut unit = None;
    let mut since_s = 3600u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let since = if let Some(v) = a.strip_prefix("--since=") {
            Some(v.to_owned())
        } else if a == "--since" || a == "-S" {
            it.next().cloned()
        } else {
            None
        };
        if let Some(v) = since {
            // `-3600s`, as the journal probe passes it.
            match v.trim_start_matches('-').trim_end_matches('s').parse() {
                Ok(n) => since_s = n,
                Err(_) => {
                    return Ok(ToolOutput::fail(
                        1,
                        format!("Failed to parse timestamp: {v}\n"),
                    ));
                }
            }
        } else if a == "-u" || a == "--unit" {
            unit = it.next().cloned();
        } else if let Some(u) = a.strip_prefix("--unit=") {
            unit = Some(u.to_owned());
        }
    }
    let Some(unit) = unit else {
        return Ok(ToolOutput::fail(
            1,
            "journalctl: the simulated journal needs -u UNIT\n",
        ));
    };
    c.text(c.get(&format!("/journal/{unit}?since_s={since_s}")))
        .await
        .map(ToolOutput::out)
}

async fn timedatectl(c: &Ctl<'_>, args: &[String]) -> Result<ToolOutput, String> {
    let synced = c.text(c.get("/timedatectl")).await?;
    if args.iter().any(|a| a == "--value") {
        Ok(ToolOutput::out(synced))
    } else {
        Ok(ToolOutput::out(format!(
            "System clock synchronized: {synced}NTP service: active\n"
        )))
    }
}

async fn sysctl(c: &Ctl<'_>, args: &[String]) -> Result<ToolOutput, String> {
    let Some((key, value)) = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.split_once('='))
    else {
        return Ok(ToolOutput::fail(
            1,
            "sysctl: the simulated host takes only `sysctl -w key=value`\n",
        ));
    };
    let body = serde_json::json!({"key": key, "value": value});
    c.exit_json(c.post("/sysctl").json(&body), false).await
}
