//! The browser harness catches what the page tests rely on it to catch: a console error and a
//! request that leaves loopback, and it saves a screenshot. (Pages served from a file and
//! from a loopback HTTP server, as the report and the dashboard are.)

mod browser;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use browser::Browser;

/// Serve `body` as HTML to every request for a while (bounded: 50 connections).
fn serve(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_clean_page_has_no_errors_or_external_requests_and_a_bad_one_has_both() {
    let b = Browser::start();
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.html");
    std::fs::write(
        &clean,
        "<!doctype html><title>ok</title><style>p{color:green}</style><p id=x>fine</p>",
    )
    .unwrap();
    let page = b.open(&format!("file://{}", clean.display()), "harness-clean");
    assert!(page.errors.is_empty(), "{:?}", page.errors);
    assert!(page.external_requests().is_empty(), "{:?}", page.requests);
    assert_eq!(
        b.script("return document.getElementById('x').textContent"),
        "fine"
    );
    assert!(std::fs::metadata(&page.screenshot).unwrap().len() > 1000);

    let url = serve(
        "<!doctype html><title>bad</title>\
         <script>console.error('boom from the page')</script>\
         <img src=\"https://cdn.example.com/logo.png\">",
    );
    let page = b.open(&url, "harness-bad");
    assert!(
        page.errors.iter().any(|e| e.contains("boom from the page")),
        "{:?}",
        page.errors
    );
    let external = page.external_requests();
    assert!(
        external.iter().any(|u| u.contains("cdn.example.com")),
        "{:?}",
        page.requests
    );
    assert!(page.requests.contains(&url), "{:?}", page.requests);
}
