//! `batten verify` on a scratch root batten made: everything passes; then
//! each property is broken in turn and verify names exactly that failure
//! and exits 1. Sealing, the seal holding, and rearming.

mod common;

use common::*;

fn verify_json(scratch: &Scratch, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["verify", "--root"];
    let root = scratch.root_arg();
    args.push(&root);
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(extra);
    let out = run(&args);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    (out.status.code(), v)
}

fn failed(v: &serde_json::Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn verify_passes_then_names_each_broken_property() {
    const T: &str = "verify_passes_then_names_each_broken_property";
    if !privileged(T) || !have("sshd", T) || !have("nginx", T) || !have("useradd", T) {
        return;
    }
    let scratch = Scratch::new();
    scratch.with_nginx();
    std::fs::create_dir_all(scratch.join("/etc/systemd/system")).unwrap();
    let ud = scratch.user_data(
        "v.yaml",
        &format!(
            "#cloud-config\nusers:\n  - {{name: admin, ssh_authorized_keys: [\"{KEY}\"]}}\nbatten:\n  proxy:\n    - {{listen: 8081, upstream: 127.0.0.1:8080, auth: {{users: [{{name: admin}}]}}}}\n"
        ),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        run(&["install", "--root", &scratch.root_arg()])
            .status
            .success()
    );

    let (code, v) = verify_json(&scratch, &[]);
    assert_eq!((code, v["ok"].as_bool()), (Some(0), Some(true)), "{v:#}");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "firewall.loaded" && c["status"] == "skip")
    );

    // Passwords back on through a drop-in that sorts first.
    let early = scratch.join("/etc/ssh/sshd_config.d/0-early.conf");
    std::fs::write(&early, "PasswordAuthentication yes\n").unwrap();
    let (code, v) = verify_json(&scratch, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        failed(&v),
        [
            "sshd.passwordauthentication.admin",
            "sshd.passwordauthentication.root"
        ],
        "{v:#}"
    );
    std::fs::remove_file(&early).unwrap();

    // The owner's key gone.
    let keys = scratch.join("/home/admin/.ssh/authorized_keys");
    let saved = std::fs::read(&keys).unwrap();
    std::fs::write(&keys, "").unwrap();
    let (code, v) = verify_json(&scratch, &[]);
    assert_eq!(
        (code, failed(&v)),
        (Some(1), vec!["keys.admin".to_string()]),
        "{v:#}"
    );
    std::fs::write(&keys, saved).unwrap();

    // The firewall file flushed to accept everything.
    let nft = scratch.join("/etc/nftables.conf");
    let saved = std::fs::read(&nft).unwrap();
    std::fs::write(&nft, "#!/usr/sbin/nft -f\nflush ruleset\n").unwrap();
    let (code, v) = verify_json(&scratch, &[]);
    assert_eq!(
        (code, failed(&v)),
        (
            Some(1),
            vec!["firewall.file./etc/nftables.conf".to_string()]
        ),
        "{v:#}"
    );
    // The drop in front of the panel's own port gone.
    let without_drop: String = String::from_utf8_lossy(&saved)
        .lines()
        .filter(|l| !l.contains("dport 8080 drop"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without_drop.as_bytes(), saved.as_slice());
    std::fs::write(&nft, without_drop).unwrap();
    let (code, v) = verify_json(&scratch, &[]);
    assert_eq!(
        (code, failed(&v)),
        (
            Some(1),
            vec!["firewall.file./etc/nftables.conf".to_string()]
        ),
        "{v:#}"
    );
    std::fs::write(&nft, saved).unwrap();

    // The proxy's auth removed.
    let site = scratch.join("/etc/nginx/sites-available/batten-8081");
    let saved = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        saved
            .lines()
            .filter(|l| !l.contains("auth_basic"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let (code, v) = verify_json(&scratch, &[]);
    assert_eq!(
        (code, failed(&v)),
        (Some(1), vec!["proxy.batten-8081".to_string()]),
        "{v:#}"
    );
    std::fs::write(&site, saved).unwrap();

    // A failing verify does not seal.
    std::fs::write(&early, "PasswordAuthentication yes\n").unwrap();
    let (code, _) = verify_json(&scratch, &["--seal"]);
    assert_eq!(code, Some(1));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["sealed"], false);
    std::fs::remove_file(&early).unwrap();

    // A passing one seals and switches the unit off; run then does nothing;
    // rearm undoes it.
    let (code, _) = verify_json(&scratch, &["--seal"]);
    assert_eq!(code, Some(0));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["sealed"], true);
    assert!(
        std::fs::symlink_metadata(
            scratch.join("/etc/systemd/system/sysinit.target.wants/batten.service")
        )
        .is_err()
    );
    let again = scratch.batten("run", &ud, &[]);
    assert!(
        again.status.success() && text(&again).contains("is sealed"),
        "{}",
        text(&again)
    );
    let rearm = run(&["rearm", "--root", &scratch.root_arg()]);
    assert!(rearm.status.success(), "{}", text(&rearm));
    assert!(
        std::fs::symlink_metadata(
            scratch.join("/etc/systemd/system/sysinit.target.wants/batten.service")
        )
        .is_ok()
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["sealed"], false);
}

/// With the iptables backend the boot loads two files, one per family:
/// verify reads both where the distribution keeps them, so a ruleset
/// missing for IPv6 is a failure, not a pass on the IPv4 file alone.
#[test]
fn verify_reads_each_iptables_file_the_boot_loads() {
    const T: &str = "verify_reads_each_iptables_file_the_boot_loads";
    if !privileged(T)
        || !have("sshd", T)
        || !have("useradd", T)
        || !have("iptables-restore", T)
        || !have("ip6tables-restore", T)
    {
        return;
    }
    let scratch = Scratch::new();
    scratch.with_iptables();
    let ud = scratch.user_data(
        "ipt.yaml",
        &format!(
            "#cloud-config\nusers:\n  - {{name: admin, ssh_authorized_keys: [\"{KEY}\"]}}\nbatten:\n  firewall: {{backend: iptables}}\n"
        ),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let (code, v) = verify_json(&scratch, &[]);
    let files: Vec<(String, String)> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("firewall.file."))
        .map(|c| {
            (
                c["what"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        (code, files),
        (
            Some(0),
            vec![
                ("/etc/iptables/rules.v4".to_string(), "pass".to_string()),
                ("/etc/iptables/rules.v6".to_string(), "pass".to_string()),
            ]
        ),
        "{v:#}"
    );
    std::fs::remove_file(scratch.join("/etc/iptables/rules.v6")).unwrap();
    let (code, v) = verify_json(&scratch, &[]);
    assert_eq!(
        (code, failed(&v)),
        (
            Some(1),
            vec!["firewall.file./etc/iptables/rules.v6".to_string()]
        ),
        "{v:#}"
    );
    assert!(v.to_string().contains("rules.v6"), "{v:#}");
}
