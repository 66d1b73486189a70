//! The dashboard in a real browser: Debian's chromium, driven through chromedriver (WebDriver,
//! via fantoccini), against a live agent on a real repo. Asserts on the DOM and the SVG, never
//! on pixels, and saves a screenshot of each page under `target/tmp/screenshots/`.
//!
//! Without chromium and chromedriver installed the test is skipped with a message; under CI
//! (`CI` set) it fails instead, since `.ci/run` installs them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

fn find(names: &[&str]) -> Option<PathBuf> {
    names
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            names.iter().find_map(|n| {
                let out = Command::new("sh")
                    .args(["-c", &format!("command -v {n}")])
                    .output()
                    .ok()?;
                let p = String::from_utf8(out.stdout).ok()?.trim().to_string();
                (!p.is_empty()).then(|| PathBuf::from(p))
            })
        })
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn console_errors(c: &Client, driver: &str) -> Vec<String> {
    // chromedriver's log endpoint (not in the W3C protocol, so called directly).
    let id = c.session_id().await.unwrap().unwrap_or_default();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{driver}/session/{id}/se/log"))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["value"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn shot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn wait_for(c: &Client, what: &str, js: &str) {
    for _ in 0..100 {
        if c.execute(js, vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let html = c.source().await.unwrap_or_default();
    panic!("timed out waiting for {what}; page:\n{html}");
}

#[test]
fn the_dashboard_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (
        find(&["chromium", "chromium-browser", "google-chrome"]),
        find(&["chromedriver", "/usr/lib/chromium/chromedriver"]),
    ) else {
        if std::env::var_os("CI").is_some() {
            panic!("CI requires chromium and chromium-driver (apt-get install chromium chromium-driver)");
        }
        eprintln!("SKIPPED the_dashboard_in_chromium: chromium or chromedriver is not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let port = free_port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let driver = format!("http://127.0.0.1:{port}");
    assert!(wait_until(Duration::from_secs(20), || http()
        .get(format!("{driver}/status"))
        .send()
        .is_ok()));

    let p = Project::new("");
    let agent = p.start();
    let base = agent.dashboard.clone().expect("dashboard served");
    p.wait_version(1);
    let t0 = std::time::Instant::now();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver)
            .await
            .expect("a chromium session");

        // The overview, open in the browser, shows a new commit's version without a reload.
        c.goto(&format!("{base}/")).await.unwrap();
        let pending = c.find(Locator::Css("#step-pending")).await.unwrap();
        assert!(pending.text().await.unwrap().contains("v1"));
        c.execute("window.__kept = 'no reload';", vec![]).await.unwrap();
        shot(&c, &shots, "overview").await;
        let spec = std::fs::read_to_string(p.repo_path.join("pipeline.toml")).unwrap();
        let spec = spec.replace("seed = 42", "seed = 43");
        p.commit(&[("pipeline.toml", spec.as_bytes())], "reseed the forest");
        wait_for(
            &c,
            "v2 pending on the open overview",
            "return document.querySelector('#step-pending') !== null && document.querySelector('#step-pending').textContent.includes('v2');",
        )
        .await;
        let seen = rcfops::registry::now_ts();
        let registered = p.registry().version(2).unwrap().unwrap().registered_ts;
        assert!(
            seen - registered < 2.0,
            "v2 showed {:.2} s after it was registered",
            seen - registered
        );
        assert_eq!(
            c.execute("return window.__kept;", vec![]).await.unwrap(),
            json!("no reload")
        );

        // An approve tag moves the stage panel, live.
        p.tag("approve/v1", &p.version_commit(1), "dana@bank.example");
        wait_for(
            &c,
            "staging serving v1",
            "return document.querySelector('#endpoint-staging') !== null && document.querySelector('#endpoint-staging').getAttribute('data-version') === '1';",
        )
        .await;
        assert_eq!(
            c.execute("return window.__kept;", vec![]).await.unwrap(),
            json!("no reload")
        );
        shot(&c, &shots, "overview-after-approval").await;

        // The version page: an SVG ROC curve with the stored points and axis labels.
        let api: Value = reqwest::get(format!("{base}/api/versions/1"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let roc_points = api["curves"]["roc"].as_array().unwrap().len();
        c.goto(&format!("{base}/versions/1")).await.unwrap();
        let line = c
            .find(Locator::Css("svg#roc polyline.s0"))
            .await
            .unwrap();
        assert_eq!(
            line.attr("data-points").await.unwrap(),
            Some(roc_points.to_string())
        );
        let drawn = line.attr("points").await.unwrap().unwrap();
        assert_eq!(drawn.split(' ').count(), roc_points);
        let labels: Vec<String> = {
            let mut v = Vec::new();
            for e in c.find_all(Locator::Css("svg#roc text.axis-label")).await.unwrap() {
                v.push(e.text().await.unwrap());
            }
            v
        };
        assert_eq!(labels, vec!["false-positive rate", "true-positive rate"]);
        let title = c
            .find(Locator::Css("svg#roc > title"))
            .await
            .unwrap()
            .html(true)
            .await
            .unwrap();
        assert!(title.contains("ROC curve, v1"), "{title}");
        assert_eq!(
            c.find_all(Locator::Css("svg#hist g.bars")).await.unwrap().len(),
            2
        );
        c.find(Locator::Css("svg#hist line.threshold")).await.unwrap();
        shot(&c, &shots, "version").await;

        // v2 against production's v1 once v1 is promoted: two curves on one chart.
        p.wait_status("v1's staging tests", |s| {
            version(s, 1).unwrap()["staging_tests"] == "Passed"
        });
        p.promote_tag(1, "lead@bank.example");
        p.wait_status("v1 in production", |s| stage_version(s, "production") == Some(1));
        c.goto(&format!("{base}/versions/2")).await.unwrap();
        assert_eq!(
            c.find_all(Locator::Css("svg#roc polyline.series")).await.unwrap().len(),
            2
        );
        shot(&c, &shots, "version-vs-production").await;

        for (path, name) in [
            ("/versions", "versions"),
            ("/runs", "runs"),
            ("/timeline", "timeline"),
            ("/audit", "audit"),
            ("/monitor", "monitor"),
        ] {
            c.goto(&format!("{base}{path}")).await.unwrap();
            c.find(Locator::Css("main#main h1")).await.unwrap();
            let next = c.find(Locator::Css("#next-step")).await.unwrap();
            assert!(next.text().await.unwrap().contains("rcfops approve 2"), "{path}");
            shot(&c, &shots, name).await;
        }
        // Readable on a narrow window: the page itself never scrolls sideways (wide tables
        // scroll inside their own box).
        c.set_window_size(420, 800).await.unwrap();
        for path in ["/", "/versions/1", "/versions", "/audit"] {
            c.goto(&format!("{base}{path}")).await.unwrap();
            let fits = c
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(fits, json!(true), "{path} overflows a 420 px window");
        }
        shot(&c, &shots, "version-narrow").await;

        let errors = console_errors(&c, &driver).await;
        assert!(errors.is_empty(), "console errors: {errors:?}");
        c.close().await.unwrap();
    });
    eprintln!(
        "browser test: {:.1} s in chromium; screenshots in {}",
        t0.elapsed().as_secs_f64(),
        shots.display()
    );
    drop(agent);
}
