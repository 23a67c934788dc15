//! Drift against the sealed state, in a scratch root (the static checks):
//! provision, seal, then a drop-in that turns passwords back on and
//! unattended-upgrades switched off. Each is found with its evidence, the
//! node_exporter textfile and `status --format json` say so; undoing it
//! makes the next check clean, and a check with nothing changed writes the
//! same textfile apart from its timestamp. The drift check changes nothing
//! but its own report files.

mod common;

use common::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDi/c0qxbedyyZUrZ9WZmCza4aMNTGgltZLVpTBOs90R admin@laptop";

fn drift(scratch: &Scratch) -> (std::process::Output, serde_json::Value) {
    let out = run(&[
        "verify",
        "--drift",
        "--root",
        &scratch.root_arg(),
        "--format",
        "json",
    ]);
    let findings = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    (out, findings)
}

fn status(scratch: &Scratch) -> (Option<i32>, serde_json::Value) {
    let out = run(&["status", "--root", &scratch.root_arg(), "--format", "json"]);
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out))),
    )
}

fn textfile(scratch: &Scratch) -> String {
    std::fs::read_to_string(scratch.join("/var/lib/prometheus/node-exporter/batten.prom")).unwrap()
}

fn without_timestamp(t: &str) -> String {
    t.lines()
        .filter(|l| !l.starts_with("batten_last_verify_timestamp_seconds "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn drift_is_found_with_its_evidence_and_undoing_it_clears_it() {
    const T: &str = "drift_is_found_with_its_evidence_and_undoing_it_clears_it";
    if !privileged(T) || !have("sshd", T) || !have("unshare", T) {
        return;
    }
    let scratch = Scratch::new();
    // The image has apt and the update tool's package, so batten
    // configures automatic updates and verify checks them.
    std::fs::create_dir_all(scratch.join("/usr/bin")).unwrap();
    for tool in ["apt-get", "unattended-upgrade"] {
        std::fs::write(scratch.join(&format!("/usr/bin/{tool}")), "#!/bin/sh\n").unwrap();
    }
    std::fs::create_dir_all(scratch.join("/lib/systemd/system")).unwrap();
    for timer in ["apt-daily.timer", "apt-daily-upgrade.timer"] {
        std::fs::write(
            scratch.join(&format!("/lib/systemd/system/{timer}")),
            "[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n",
        )
        .unwrap();
    }
    let ud = scratch.user_data(
        "ud.yaml",
        &format!("#cloud-config\nusers:\n  - name: admin\n    ssh_authorized_keys: [\"{KEY}\"]\n"),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));

    // Not sealed yet: nothing to compare with, and nothing written.
    let out = run(&["verify", "--drift", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not sealed yet"), "{}", text(&out));
    assert_eq!(status(&scratch).1["status"], "running");

    let out = run(&["verify", "--seal", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(scratch.join("/var/lib/batten/sealed.json").exists());

    // Nothing changed: clean, and the textfile says so.
    let (out, findings) = drift(&scratch);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        findings["items"].as_array().unwrap().len(),
        0,
        "{findings:#}"
    );
    let clean = textfile(&scratch);
    assert!(clean.contains("\nbatten_drift_items 0\n"), "{clean}");
    let (code, st) = status(&scratch);
    assert_eq!(
        (code, st["status"].as_str()),
        (Some(0), Some("done")),
        "{st:#}"
    );

    // Drift 1: a drop-in, read before batten's, turns passwords back on.
    let before = snapshot(scratch.path());
    let oops = scratch.join("/etc/ssh/sshd_config.d/00-a-oops.conf");
    std::fs::write(&oops, "PasswordAuthentication yes\n").unwrap();
    // Drift 2: automatic updates switched off.
    let periodic = scratch.join("/etc/apt/apt.conf.d/20auto-upgrades");
    let periodic_text = std::fs::read_to_string(&periodic).unwrap();
    std::fs::write(&periodic, periodic_text.replace("\"1\"", "\"0\"")).unwrap();
    let (out, findings) = drift(&scratch);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let items = findings["items"].as_array().unwrap();
    let item = |prefix: &str| {
        items
            .iter()
            .find(|i| i["id"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}: {findings:#}"))
    };
    let pw = item("sshd.passwordauthentication.");
    assert_eq!(pw["kind"], "drifted");
    assert!(
        pw["now"]
            .as_str()
            .unwrap()
            .contains("/etc/ssh/sshd_config.d/00-a-oops.conf:1"),
        "the evidence names the drop-in: {pw}"
    );
    assert_eq!(item("updates.config")["kind"], "drifted", "{findings:#}");
    let drifted = textfile(&scratch);
    assert!(
        drifted.contains("\nbatten_check_ok{check=\"sshd_passwordauthentication\"} 0\n"),
        "{drifted}"
    );
    assert!(
        drifted.contains("\nbatten_check_ok{check=\"updates_config\"} 0\n"),
        "{drifted}"
    );
    assert!(!drifted.contains("\nbatten_drift_items 0\n"), "{drifted}");
    let (code, st) = status(&scratch);
    assert_eq!(
        (code, st["status"].as_str()),
        (Some(2), Some("degraded")),
        "{st:#}"
    );
    assert!(
        st["recoverable_errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("00-a-oops.conf")),
        "{st:#}"
    );
    // The drift check changed nothing but its own report files.
    let moved: Vec<_> = changed(&before, &snapshot(scratch.path()))
        .into_iter()
        .filter(|p| {
            !p.starts_with("var/lib/batten")
                && !p.starts_with("var/lib/prometheus")
                && !p.starts_with("etc/ssh/sshd_config.d")
                && !p.ends_with("20auto-upgrades")
        })
        .collect();
    assert!(moved.is_empty(), "the drift check changed {moved:?}");

    // Undone: the next check is clean, and writes what it wrote before but
    // the timestamp.
    std::fs::remove_file(&oops).unwrap();
    std::fs::write(&periodic, periodic_text).unwrap();
    let (out, findings) = drift(&scratch);
    assert!(out.status.success(), "{}\n{findings:#}", text(&out));
    assert_eq!(
        without_timestamp(&textfile(&scratch)),
        without_timestamp(&clean)
    );
    assert_eq!(status(&scratch).1["status"], "done");
}
