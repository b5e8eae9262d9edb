//! The drill's HTML report as people see it: rendered by a real headless browser (Chromium, from the
//! machine's packages, installed by `.ci/run` like PostgreSQL), a screenshot of each page kept under the test
//! binary's output directory, and the DOM the browser built checked, with one drill in the chart and with
//! thirty.

use std::path::{Path, PathBuf};
use std::process::Command;

use opsplane_shared::aws::objects::ObjectStore;
use opsplane_shared::domain::drill::{DrillPoint, Verdict, render_html};

use crate::backup::Plane;
use crate::harness::unique;

/// The browser: `OPSPLANE_BROWSER`, else the first of Chromium's usual names on `PATH`. A test that needs
/// it never skips.
fn browser() -> PathBuf {
    if let Some(path) = std::env::var_os("OPSPLANE_BROWSER") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .expect(
            "a headless browser is needed to check the reports as people see them: install Chromium \
             (apt-get install chromium; .ci/run does) or set OPSPLANE_BROWSER",
        )
}

/// Renders `page` in the headless browser: its screenshot into `shot`, and the DOM the browser built.
fn browse(page: &Path, shot: &Path) -> String {
    let url = format!("file://{}", page.display());
    // One headless run of the browser on the page, doing `what`; its standard output.
    let run = |what: &str| {
        let out = Command::new(browser())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1200,1800",
                what,
                &url,
            ])
            .output()
            .expect("the browser runs");
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&format!("--screenshot={}", shot.display()));
    String::from_utf8(run("--dump-dom")).expect("the DOM is UTF-8")
}

#[tokio::test]
async fn the_drill_report_renders_in_a_headless_browser_with_one_drill_and_with_thirty() {
    // A drill whose RTO target no restore meets: its report shows a missed target beside the figures.
    let plane = Plane::backed_up_and_drilled_past_its_target().await;
    let objects = ObjectStore::new(
        plane.world.clients.s3.clone(),
        plane.world.config.bucket_name.clone(),
    );
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("reports"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let latest = opsplane_cli::report::drill(&objects, &plane.env, true, &out_dir)
        .await
        .unwrap();
    let one = latest.html_file.clone().expect("the HTML page");

    // The same report over thirty drills, the most the chart shows.
    let report = latest.reports[0].clone();
    let history: Vec<DrillPoint> = (0..30)
        .map(|i| DrillPoint {
            ts: format!("202611{:02}T020000000Z-d{i}", i + 1),
            rto_seconds: 900 + 20 * i,
            rpo_seconds: 60 * (i % 7),
            verdict: if i % 10 == 9 {
                Verdict::TargetMissed
            } else {
                Verdict::Passed
            },
        })
        .collect();
    let thirty = out_dir.join("drill-thirty.html");
    std::fs::write(&thirty, render_html(&report, &history)).unwrap();

    for (name, page, drills, legend) in [
        ("one", one, 1, "1 drill,"),
        ("thirty", thirty, 30, "30 drills,"),
    ] {
        let shot = out_dir.join(format!("drill-{name}.png"));
        let dom = browse(&page, &shot);
        let png = std::fs::read(&shot).expect("the screenshot was written");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
        // A blank 1200x1800 page compresses to a few KiB; the report's tables, text and chart do not.
        assert!(png.len() > 40_000, "{name}: {} bytes", png.len());
        // What the browser built: the figures, the targets, one point per drill and series, the legend.
        assert!(dom.contains(&format!("DR drill {}", plane.env)), "{dom}");
        assert!(
            dom.contains("RTO target") && dom.contains("RPO target"),
            "{dom}"
        );
        assert_eq!(dom.matches("class=\"rto-point\"").count(), drills, "{name}");
        assert_eq!(dom.matches("class=\"rpo-point\"").count(), drills, "{name}");
        assert!(dom.contains(legend), "{name}: {dom}");
        assert!(
            !dom.contains("Some(") && !dom.contains("None"),
            "{name}: {dom}"
        );
        println!("{name}: {}", shot.display());
    }
}
