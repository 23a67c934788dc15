//! The binary against scratch roots made of this machine's real account and
//! SSH files: bad input changes nothing, `plan` writes nothing, a second
//! `run` changes nothing, planted symlinks are refused, exit codes hold.

mod common;

use std::io::Write as _;
use std::process::Stdio;

use batten::host::root::Root;
use common::*;

fn good_user_data() -> String {
    format!(
        "#cloud-config\nusers:\n  - name: alice\n    groups: [adm]\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    shell: /bin/bash\n    ssh_authorized_keys: [\"{KEY}\"]\n  - name: bob\n    lock_passwd: false\n    plain_text_passwd: \"correct horse battery\"\nssh_pwauth: false\nruncmd: [\"echo hi\"]\n"
    )
}

#[test]
fn every_example_validates() {
    let dir = repo().join("cloud-init/examples");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected the examples in {}",
        dir.display()
    );
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn schema_file_matches_the_binary() {
    let out = run(&["schema"]);
    assert!(out.status.success());
    let file = std::fs::read_to_string(repo().join("cloud-init/schema.json")).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        file,
        "cloud-init/schema.json is stale: run `cargo run -- schema > cloud-init/schema.json`"
    );
    let v: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
}

#[test]
fn invalid_user_data_exits_65_with_every_error_positioned() {
    let scratch = Scratch::new();
    let ud = scratch.user_data("bad.yaml",
        "#cloud-config\nusers:\n  - name: \"../evil\"\n    ssh_authorized_keys: [\"ssh-ed25519 AAAA-not-base64\"]\nbatten:\n  firewall:\n    allow:\n      - {port: 0}\n      - {from: \"203.0.113.7/24\"}\n  proxxy: []\n",
    );
    let out = run(&["validate", &ud]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 5, "{stderr}");
    assert!(
        errors[0].contains(":3:11: users[0].name: \"../evil\""),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains(":4:27: users[0].ssh_authorized_keys[0]: not a valid SSH public key"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains(":8:16: batten.firewall.allow[0].port: 0 is not a port"),
        "{}",
        errors[2]
    );
    assert!(errors[3].contains(":9:16: batten.firewall.allow[1].from: \"203.0.113.7/24\" has host bits set; did you mean 203.0.113.0/24?"), "{}", errors[3]);
    assert!(
        errors[4].contains(":10:3: batten.proxxy: unknown key \"proxxy\"; did you mean \"proxy\"?"),
        "{}",
        errors[4]
    );

    let json = run(&["validate", "--format", "json", &ud]);
    assert_eq!(json.status.code(), Some(65));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["files"][0]["errors"][0]["line"], 3);
    assert_eq!(v["files"][0]["errors"][0]["column"], 11);
    assert_eq!(v["files"][0]["errors"][0]["path"], "users[0].name");
}

/// `batten validate FILE` exits 65; its error lines.
fn refused(ud: &str) -> Vec<String> {
    let out = run(&["validate", ud]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect()
}

/// `batten.updates` and `batten.kernel`: a reboot time that is not HH:MM
/// (it would reach apt's and dnf's files), an unknown update set and an
/// unknown key are errors, exit 65; off is a warning, exit 0.
#[test]
fn updates_and_kernel_sections_are_checked_like_the_rest() {
    let scratch = Scratch::new();
    let ud = scratch.user_data(
        "bad.yaml",
        "#cloud-config\nbatten:\n  updates:\n    packages: everything\n    reboot: \"3:30;reboot\"\n  kernel: {enable: false}\n",
    );
    let errors = refused(&ud);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains(":4:15: batten.updates.packages: \"everything\" is not an update set"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains(":5:13: batten.updates.reboot: \"3:30;reboot\" is not a time"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains(
            ":6:12: batten.kernel.enable: unknown key \"enable\"; did you mean \"enabled\"?"
        ),
        "{}",
        errors[2]
    );

    let ud = scratch.user_data(
        "off.yaml",
        "#cloud-config\nbatten:\n  updates: false\n  kernel: {enabled: false}\n",
    );
    let out = run(&["validate", &ud]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("batten.updates: automatic updates are off"),
        "{said}"
    );
    assert!(
        said.contains("batten.kernel.enabled: the kernel settings are off"),
        "{said}"
    );
}

#[test]
fn bad_input_changes_zero_bytes_in_the_root() {
    let scratch = Scratch::new();
    let before = snapshot(scratch.path());
    for (name, body) in [
        ("syntax.yaml", "#cloud-config\nusers: [\n"),
        ("types.yaml", "#cloud-config\nusers: 42\nssh_pwauth: [1]\n"),
        (
            "bomb.yaml",
            "#cloud-config\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
        ),
        (
            "inject.yaml",
            "#cloud-config\nusers:\n  - name: a\n    sudo: \"ALL\\nroot ALL=(ALL) ALL\"\n",
        ),
        (
            // Asking for the very hole batten closes: Pi OS's old default,
            // hashed with yescrypt as Raspberry Pi Imager writes it.
            "default-password.yaml",
            "#cloud-config\nuser:\n  name: pi\n  passwd: $y$j9T$bueRBYFHX06XJDMnF8YUN1$we0SojwqKYp1AL5U.Vs4Ao4hfIjouUmD4qoYTlBQB94\n  lock_passwd: false\n",
        ),
    ] {
        let ud = scratch.user_data(name, body);
        for cmd in ["plan", "run"] {
            let out = run(&[cmd, "--root", &scratch.root_arg(), "--user-data", &ud]);
            assert_eq!(out.status.code(), Some(65), "{cmd} {name}: {}", text(&out));
        }
    }
    assert_unchanged(&before, scratch.path());
}

/// Known default passwords planted in an image, one per scheme Debian,
/// Arch and older images use, and an empty one.
const PLANTED: &[(&str, &str)] = &[
    // Debian 12's `mkpasswd -m yescrypt raspberry`.
    (
        "pi",
        "$y$j9T$bueRBYFHX06XJDMnF8YUN1$we0SojwqKYp1AL5U.Vs4Ao4hfIjouUmD4qoYTlBQB94",
    ),
    // `openssl passwd -1 -salt saltsalt alarm`.
    ("alarm", "$1$saltsalt$1.d7sA/ak0vsOYulqpLmB0"),
    ("guest", ""),
];

#[test]
fn default_passwords_in_the_image_are_locked_named_and_reported() {
    const TEST: &str = "default_passwords_in_the_image_are_locked_named_and_reported";
    if !privileged(TEST) || !have("useradd", TEST) {
        return;
    }
    let scratch = Scratch::new();
    let append = |file: &str, line: String| {
        let path = scratch.join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&line);
        std::fs::write(path, text).unwrap();
    };
    for (i, (user, hash)) in PLANTED.iter().enumerate() {
        let uid = 4000 + i;
        append(
            "/etc/passwd",
            format!("{user}:x:{uid}:{uid}::/nonexistent:/bin/sh\n"),
        );
        append("/etc/group", format!("{user}:x:{uid}:\n"));
        append("/etc/shadow", format!("{user}:{hash}:19000:0:99999:7:::\n"));
    }
    let ud = scratch.user_data("ud.yaml", &good_user_data());
    let out = scratch.batten("plan", &ud, &[]);
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        plan.contains("# alarm's password was the known default password \"alarm\" (Arch Linux ARM images): locked"),
        "{plan}"
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    for user in ["pi", "alarm", "guest"] {
        assert!(
            console.contains(&format!("DEFAULT PASSWORD LOCKED: {user}'s password was")),
            "{user} is named on the console: {console}"
        );
    }
    let shadow = std::fs::read_to_string(scratch.join("/etc/shadow")).unwrap();
    for (user, hash) in PLANTED {
        assert!(
            shadow.contains(&format!("\n{user}:!{hash}:19000:")),
            "{user} is locked as passwd -l locks: {shadow}"
        );
    }
    let out = run(&["status", "--root", &scratch.root_arg(), "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let locked: Vec<&str> = status["default_passwords_locked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["user"].as_str().unwrap())
        .collect();
    assert_eq!(locked, ["pi", "alarm", "guest"], "{status}");
    let out = run(&["verify", "--root", &scratch.root_arg(), "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "passwords.defaults")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(check["status"], "pass", "{check}");
    assert!(
        check["why"]
            .as_str()
            .unwrap()
            .ends_with("locked by batten: pi, alarm, guest"),
        "{check}"
    );
    // Hashes found clean are remembered by digest only, not copied.
    let cache =
        std::fs::read_to_string(scratch.join("/var/lib/batten/passwords-checked.json")).unwrap();
    assert!(!cache.contains('$'), "{cache}");
    let again = run(&["verify", "--root", &scratch.root_arg(), "--format", "json"]);
    assert_eq!(again.stdout, out.stdout, "a second check says the same");
    // Converged: the second run has nothing to lock.
    let out = scratch.batten("run", &ud, &[]);
    assert!(text(&out).contains("nothing to change"), "{}", text(&out));

    // A default that comes back later is a failed check, named.
    let unlocked = std::fs::read_to_string(scratch.join("/etc/shadow"))
        .unwrap()
        .replace("alarm:!$1$", "alarm:$1$");
    std::fs::write(scratch.join("/etc/shadow"), unlocked).unwrap();
    let out = run(&["verify", "--root", &scratch.root_arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "alarm (\"alarm\" (Arch Linux ARM images)) still open with a known default password"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn plan_writes_nothing_and_shows_the_diff() {
    let scratch = Scratch::new();
    let ud = scratch.user_data("ud.yaml", &good_user_data());
    let before = snapshot(scratch.path());
    let out = scratch.batten("plan", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("useradd --no-create-home"), "{stdout}");
    assert!(stdout.contains("+alice ALL=(ALL) NOPASSWD:ALL"), "{stdout}");
    assert!(stdout.contains("left to cloud-init: runcmd"), "{stdout}");
    assert!(
        !stdout.contains("correct horse"),
        "a secret reached the plan: {stdout}"
    );
    assert_unchanged(&before, scratch.path());
}

#[test]
fn run_creates_accounts_and_a_second_run_changes_nothing() {
    if !privileged("run_creates_accounts_and_a_second_run_changes_nothing")
        || !have("useradd", "run")
    {
        return;
    }
    let scratch = Scratch::new();
    let ud = scratch.user_data("ud.yaml", &good_user_data());
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains("correct horse"),
        "a secret reached the output"
    );

    let passwd = std::fs::read_to_string(scratch.join("/etc/passwd")).unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("alice:") && l.ends_with(":/home/alice:/bin/bash")),
        "{passwd}"
    );
    assert!(passwd.lines().any(|l| l.starts_with("bob:")));
    let shadow = std::fs::read_to_string(scratch.join("/etc/shadow")).unwrap();
    let bob = shadow.lines().find(|l| l.starts_with("bob:")).unwrap();
    assert!(
        bob.starts_with("bob:$6$"),
        "bob's console password is set, hashed: {bob}"
    );
    assert!(!shadow.contains("correct horse"));
    let alice = shadow.lines().find(|l| l.starts_with("alice:")).unwrap();
    assert!(alice.starts_with("alice:!"), "alice is locked: {alice}");
    let sudoers =
        std::fs::read_to_string(scratch.join("/etc/sudoers.d/90-cloud-init-users")).unwrap();
    assert!(sudoers.contains("alice ALL=(ALL) NOPASSWD:ALL"));
    let meta = std::fs::metadata(scratch.join("/var/lib/batten/user-data")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["instance_id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(state["runs"][0]["outcome"], "applied");

    // The second run: nothing outside batten's own state moves.
    let before = snapshot(scratch.path());
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing to change"), "{}", text(&out));
    let moved: Vec<_> = changed(&before, &snapshot(scratch.path()))
        .into_iter()
        .filter(|p| !p.starts_with("var/lib"))
        .collect();
    assert!(moved.is_empty(), "a second run changed {moved:?}");
    let out = scratch.batten("plan", &ud, &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to change"),
        "{}",
        text(&out)
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["runs"][1]["outcome"], "unchanged");
}

#[test]
fn a_planted_symlink_is_refused_and_its_target_untouched() {
    if !privileged("a_planted_symlink_is_refused_and_its_target_untouched") {
        return;
    }
    let scratch = Scratch::new();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("precious");
    std::fs::write(&target, "do not touch\n").unwrap();
    std::os::unix::fs::symlink(&target, scratch.join("/etc/sudoers.d/90-cloud-init-users"))
        .unwrap();
    let ud = scratch.user_data(
        "ud.yaml",
        "#cloud-config\nusers:\n  - {name: root, sudo: \"ALL=(ALL) ALL\"}\n",
    );
    let out = scratch.batten("run", &ud, &[]);
    assert_eq!(out.status.code(), Some(70), "{}", text(&out));
    assert!(
        text(&out).contains("symlink") || text(&out).contains("symbolic link"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");

    // batten's own state directory planted as a link out of the root.
    let scratch = Scratch::new();
    std::os::unix::fs::symlink(outside.path(), scratch.join("/var/lib/batten")).unwrap();
    let ud = scratch.user_data("ud2.yaml", "#cloud-config\nusers: []\nssh_pwauth: true\n");
    let out = scratch.batten("run", &ud, &[]);
    assert_eq!(out.status.code(), Some(70), "{}", text(&out));
    let left: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("precious")],
        "batten wrote through the link"
    );
}

#[test]
fn user_data_from_standard_input_gzip_and_multipart() {
    let scratch = Scratch::new();
    let mime = format!(
        "Content-Type: multipart/mixed; boundary=\"XYZ\"\nMIME-Version: 1.0\n\n--XYZ\nContent-Type: text/cloud-config; charset=\"us-ascii\"\nContent-Disposition: attachment; filename=\"a.yaml\"\n\n#cloud-config\nusers: [{{name: carol, ssh_authorized_keys: [\"{KEY}\"]}}]\n\n--XYZ\nContent-Type: text/x-shellscript\nContent-Disposition: attachment; filename=\"setup.sh\"\n\n#!/bin/sh\necho hi\n\n--XYZ\nContent-Type: text/cloud-config\n\n#cloud-config\nssh_pwauth: \"true\"\nbatten:\n  firewall: {{enabled: off}}\n--XYZ--\n"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(mime.replace('\n', "\r\n").as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let mut child = batten()
        .args(["plan", "--root", &scratch.root_arg(), "--user-data", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("useradd --no-create-home"), "{all}");
    assert!(all.contains(" carol"), "{all}");
    assert!(
        all.contains("setup.sh"),
        "the script part is reported as left to cloud-init: {all}"
    );
    assert!(all.contains("the firewall is off"), "{all}");
}

#[test]
fn seed_in_boot_firmware_with_raspberry_pi_meta_data() {
    let scratch = Scratch::new();
    let example =
        std::fs::read_to_string(repo().join("cloud-init/examples/raspberry-pi-imager.yaml"))
            .unwrap();
    std::fs::write(scratch.join("/boot/firmware/user-data"), example).unwrap();
    std::fs::write(
        scratch.join("/boot/firmware/meta-data"),
        "instance_id: rpi-imager-1732000000\n",
    )
    .unwrap();
    let out = run(&["plan", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Raspberry Pi boot partition /boot/firmware"),
        "{stdout}"
    );
    assert!(
        stdout.contains("instance-id: rpi-imager-1732000000 (from meta-data)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("useradd --no-create-home") && stdout.contains(" pi\n"),
        "{stdout}"
    );
    assert!(stdout.contains("password field of pi (hidden)"), "{stdout}");

    let status = run(&["status", "--root", &scratch.root_arg(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["instance_id"]["id"], "rpi-imager-1732000000");
    assert_eq!(v["sealed"], false);
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    let out = run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["plan", "--root", "/nonexistent/batten-test"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(&["run", "--from-metadata", "--root", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(&["run", "--from-metadata", "--user-data", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("cannot be used with"), "{}", text(&out));
    let out = run(&["run", "--provider", "azure"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("hetzner"), "{}", text(&out));
    let help = run(&["--help"]);
    let h = String::from_utf8_lossy(&help.stdout);
    for word in ["validate", "plan", "run", "status", "schema", "Exit codes"] {
        assert!(h.contains(word), "--help lacks {word}: {h}");
    }
    let version = run(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("batten "));
}

#[test]
fn unknown_distro_names_the_fix() {
    let scratch = Scratch::new();
    std::fs::write(scratch.join("/etc/os-release"), "ID=plan9\n").unwrap();
    let ud = scratch.user_data("ud.yaml", "#cloud-config\nusers: []\nssh_pwauth: true\n");
    let out = scratch.batten("plan", &ud, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--family"), "{}", text(&out));
    let out = run(&[
        "plan",
        "--root",
        &scratch.root_arg(),
        "--family",
        "debian",
        "--user-data",
        &ud,
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_sudo_rule_visudo_refuses_stops_the_run_before_any_change() {
    if !privileged("a_sudo_rule_visudo_refuses") || !have("visudo", "a_sudo_rule_visudo_refuses") {
        return;
    }
    let scratch = Scratch::new();
    let ud = scratch.user_data("ud.yaml",
        &format!(
            "#cloud-config\nusers:\n  - {{name: dave, sudo: \"ALL=(ALL NOPASSWD ALL\", ssh_authorized_keys: [\"{KEY}\"]}}\n"
        ),
    );
    let before = snapshot(scratch.path());
    let out = scratch.batten("run", &ud, &[]);
    assert_eq!(out.status.code(), Some(70), "{}", text(&out));
    assert!(text(&out).contains("visudo refused"), "{}", text(&out));
    assert!(text(&out).contains("nothing was changed"), "{}", text(&out));
    let moved: Vec<_> = changed(&before, &snapshot(scratch.path()))
        .into_iter()
        .filter(|p| !p.starts_with("var/lib/batten") && p != std::path::Path::new("var/lib"))
        .collect();
    assert!(moved.is_empty(), "a refused run changed {moved:?}");
}

#[test]
fn run_uses_the_images_skel_cloud_cfg_and_groups() {
    if !privileged("run_uses_the_images_skel_cloud_cfg_and_groups") || !have("useradd", "run") {
        return;
    }
    let scratch = Scratch::new();
    std::fs::write(scratch.join("/etc/skel/.from-the-image"), "image skel\n").unwrap();
    std::fs::create_dir_all(scratch.join("/etc/cloud")).unwrap();
    std::fs::write(
        scratch.join("/etc/cloud/cloud.cfg"),
        "system_info:\n  default_user:\n    name: captain\n    groups: [adm, batten-crew]\n    sudo: [\"ALL=(ALL) ALL\"]\n    shell: /bin/bash\n",
    )
    .unwrap();
    let ud = scratch.user_data("ud.yaml",
        &format!(
            "#cloud-config\nssh_authorized_keys: [\"{KEY}\"]\nusers:\n  - default\n  - {{name: erin, sudo: false}}\n  - default\n"
        ),
    );
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        scratch.join("/home/captain/.from-the-image").exists(),
        "the image's /etc/skel was not used"
    );
    let group = std::fs::read_to_string(scratch.join("/etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("batten-crew:") && l.ends_with(":captain")),
        "{group}"
    );
    let sudoers =
        std::fs::read_to_string(scratch.join("/etc/sudoers.d/90-cloud-init-users")).unwrap();
    assert!(
        sudoers.contains("\n# User rules for captain\ncaptain ALL=(ALL) ALL\n"),
        "{sudoers}"
    );
    assert!(
        !sudoers.contains("erin"),
        "sudo: false means no rule: {sudoers}"
    );
    assert_eq!(
        sudoers.matches("User rules for captain").count(),
        1,
        "{sudoers}"
    );
}

#[test]
fn a_home_that_is_a_symlink_is_refused() {
    let scratch = Scratch::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::remove_dir(scratch.join("/home")).unwrap();
    std::os::unix::fs::symlink(outside.path(), scratch.join("/home")).unwrap();
    let ud = scratch.user_data("ud.yaml", "#cloud-config\nusers: [frank]\n");
    let before = snapshot(scratch.path());
    let out = scratch.batten("run", &ud, &[]);
    assert_eq!(out.status.code(), Some(70), "{}", text(&out));
    assert!(
        text(&out).contains("/home is a symbolic link"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_unchanged(&before, scratch.path());
}

#[test]
fn instance_id_from_meta_data_file_and_from_cmdline_txt() {
    let scratch = Scratch::new();
    let ud = scratch.user_data("ud.yaml", "#cloud-config\nusers: []\nssh_pwauth: true\n");
    let md = scratch.user_data("md.yaml", "instance-id: iid-from-file\n");
    let out = run(&[
        "plan",
        "--root",
        &scratch.root_arg(),
        "--user-data",
        &ud,
        "--meta-data",
        &md,
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("instance-id: iid-from-file (from meta-data)"),
        "{}",
        text(&out)
    );
    std::fs::write(
        scratch.join("/boot/firmware/cmdline.txt"),
        "console=tty1 ds=nocloud;i=rpi-imager-42 quiet\n",
    )
    .unwrap();
    let out = scratch.batten("plan", &ud, &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("instance-id: rpi-imager-42 (from kernel command line"),
        "{}",
        text(&out)
    );
    let bad = scratch.user_data("bad-md.yaml", "instance-id: \"../../etc\"\n");
    let out = run(&[
        "plan",
        "--root",
        &scratch.root_arg(),
        "--user-data",
        &ud,
        "--meta-data",
        &bad,
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
}

#[test]
fn the_seal_holds_for_the_same_instance_and_not_for_a_clone() {
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.join("/var/lib/batten")).unwrap();
    let sealed = |id: &str| {
        std::fs::write(
            scratch.join("/var/lib/batten/state.json"),
            format!("{{\"instance_id\": \"{id}\", \"sealed\": true, \"runs\": []}}"),
        )
        .unwrap();
    };
    let ud = scratch.user_data("ud.yaml", "#cloud-config\nusers: []\nssh_pwauth: true\n");
    sealed("0123456789abcdef0123456789abcdef");
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is sealed"), "{}", text(&out));
    assert!(
        !scratch.join("/var/lib/batten/user-data").exists(),
        "a sealed instance ran"
    );

    let out = scratch.batten("run", &ud, &["--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        scratch.join("/var/lib/batten/user-data").exists(),
        "--force did not run"
    );

    // The image was sealed under another id: this machine is a clone.
    std::fs::remove_file(scratch.join("/var/lib/batten/user-data")).unwrap();
    sealed("iid-of-the-template");
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        scratch.join("/var/lib/batten/user-data").exists(),
        "a clone did not run"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("/var/lib/batten/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["sealed"], false);
    assert_eq!(state["instance_id"], "0123456789abcdef0123456789abcdef");
}

#[test]
fn secrets_stay_out_of_every_file_batten_keeps() {
    if !privileged("secrets_stay_out_of_every_file_batten_keeps") || !have("useradd", "secrets") {
        return;
    }
    let scratch = Scratch::new();
    let ud = scratch.user_data("ud.yaml", &good_user_data());
    let out = scratch.batten("run", &ud, &[]);
    assert!(out.status.success(), "{}", text(&out));
    for (path, seen) in snapshot(&scratch.join("/var/lib/batten")) {
        // The 0600 copy of the input itself, and the backup of /etc/shadow
        // (which holds the image's own hashes, as /etc/shadow does).
        if path == std::path::Path::new("user-data") || path.ends_with("etc/shadow") {
            continue;
        }
        let body = String::from_utf8_lossy(&seen.content);
        assert!(
            !body.contains("correct horse"),
            "{} holds the password",
            path.display()
        );
        assert!(!body.contains("$6$"), "{} holds a hash", path.display());
    }
}

#[test]
fn with_no_user_data_only_the_default_firewall_is_put_in_place() {
    const T: &str = "with_no_user_data_only_the_default_firewall_is_put_in_place";
    if !have("nft", T) {
        return;
    }
    let scratch = Scratch::new();
    let before = snapshot(scratch.path());
    let out = run(&["run", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no user-data found"), "{}", text(&out));
    let rules = std::fs::read_to_string(scratch.join("/etc/nftables.conf")).unwrap();
    assert!(rules.contains("policy drop;"), "{rules}");
    assert!(
        rules.contains("tcp dport 22 accept comment \"ssh: always accepted\""),
        "{rules}"
    );
    let after = snapshot(scratch.path());
    let touched: Vec<_> = changed(&before, &after)
        .into_iter()
        .filter(|p| !p.starts_with("var/lib"))
        .collect();
    // The firewall's modprobe file keeps the legacy ip_tables module,
    // unused beside nftables, from loading at boot (Lynis FIRE-4512).
    assert_eq!(
        touched,
        [
            std::path::PathBuf::from("etc"),
            "etc/modprobe.d".into(),
            "etc/modprobe.d/60-batten-firewall.conf".into(),
            "etc/nftables.conf".into()
        ],
        "only the firewall (and batten's own journal) changed"
    );
    // A second run changes nothing.
    let again = snapshot(scratch.path());
    assert!(
        run(&["run", "--root", &scratch.root_arg()])
            .status
            .success()
    );
    assert_unchanged(&again, scratch.path());
}

/// A card whose Pi OS `userconf.txt` asks for pi/raspberry, and no
/// user-data: the baseline removes the file, since Pi OS would set the
/// default password after batten, and names it on the console.
#[test]
fn a_userconf_with_the_default_password_is_removed_even_without_user_data() {
    const T: &str = "a_userconf_with_the_default_password_is_removed_even_without_user_data";
    if !have("nft", T) {
        return;
    }
    let scratch = Scratch::new();
    // `openssl passwd -6 -salt abcdefgh raspberry`.
    let userconf = scratch.join("/boot/firmware/userconf.txt");
    std::fs::write(
        &userconf,
        "pi:$6$abcdefgh$4o4.L3tiGL1RD7BsjaaWYcCVs87zOlvZK7S6SXQETuFMA2ELLDwmf3YDHidZ3I4E/fXmmOOWhAJHUSMf.eA6c1\n",
    )
    .unwrap();
    let out = run(&["run", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("DEFAULT PASSWORD REFUSED: /boot/firmware/userconf.txt asks Pi OS to give pi the known default password \"raspberry\""),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains("left to Pi OS's userconfig"),
        "{}",
        text(&out)
    );
    assert!(!userconf.exists(), "userconf.txt is still there");
}

/// The README's first command: the sample user-data against a copy of the
/// cached real Debian root, applied, then applied again with nothing to do,
/// then verified. It must work on a machine without nft, nginx, sshd or
/// visudo of its own: here they are hidden from it (/dev/null bound over
/// each in a private mount namespace), so only the image's programs check.
#[test]
fn the_readmes_scratch_root_command_works() {
    const T: &str = "the_readmes_scratch_root_command_works";
    if !privileged(T) || !have("debootstrap", T) || !have("useradd", T) || !have("unshare", T) {
        return;
    }
    let hidden: Vec<String> = ["nft", "nginx", "sshd", "visudo", "iptables-restore"]
        .iter()
        .filter_map(|p| batten::host::exec::find_program(p))
        .map(|p| p.display().to_string())
        .collect();
    let out = std::process::Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "n=$1; shift; while [ \"$n\" -gt 0 ]; do mount --bind /dev/null \"$1\" || exit 99; shift; n=$((n-1)); done; exec \"$@\"",
            "sh",
        ])
        .arg(hidden.len().to_string())
        .args(&hidden)
        .arg(repo().join("scripts/try-scratch-root.sh"))
        .arg(repo().join("cloud-init/examples/vps-proxy-firewall.yaml"))
        .env("BATTEN", env!("CARGO_BIN_EXE_batten"))
        .output()
        .unwrap();
    let said = text(&out);
    // Remove the scratch root it leaves for the reader to look at (named
    // as soon as it is made, so a failed run leaves nothing either).
    if let Some(line) = said.lines().find(|l| l.contains("remove it with: rm -rf ")) {
        let dir = line
            .rsplit("rm -rf ")
            .next()
            .unwrap()
            .trim()
            .trim_end_matches(')');
        assert!(dir.starts_with("/tmp/batten-scratch."), "{dir}");
        std::fs::remove_dir_all(dir).unwrap();
    }
    assert!(out.status.success(), "{said}");
    assert!(said.contains("applied "), "{said}");
    assert!(said.contains("nothing to change"), "{said}");
    assert!(!said.contains("statically only"), "{said}");
}

/// A name sudo misreads, given in one layer while the sudo rule comes from
/// another (`user: ALL` keeps the image's default sudo rule): refused on the
/// merged account, before anything changes.
#[test]
fn a_default_user_named_all_gets_no_sudoers_line() {
    let scratch = Scratch::new();
    let before = snapshot(scratch.path());
    for doc in [
        "#cloud-config\nuser: ALL\nssh_pwauth: false\n",
        "#cloud-config\nsystem_info:\n  default_user:\n    name: ALL\nssh_pwauth: false\n",
    ] {
        let ud = scratch.user_data("all.yaml", doc);
        let out = scratch.batten("run", &ud, &[]);
        assert_eq!(out.status.code(), Some(65), "{doc}{}", text(&out));
        assert!(
            text(&out).contains("sudo reads \"ALL\" at the start of a rule as a keyword"),
            "{}",
            text(&out)
        );
        assert_unchanged(&before, scratch.path());
    }
}

/// A run that fails late (nginx refuses a file of the image's own, after
/// the new account and its home were made) leaves the root as it found
/// it, byte for byte outside batten's own records: the home batten made is
/// removed with everything else it did, and the run says so.
#[test]
fn a_late_failure_removes_the_home_it_made_and_changes_no_byte() {
    const T: &str = "a_late_failure_removes_the_home_it_made_and_changes_no_byte";
    if !privileged(T) || !have("nginx", T) || !have("useradd", T) {
        return;
    }
    let scratch = Scratch::new();
    scratch.with_nginx();
    // A file batten never writes, that `nginx -t` refuses: the failure
    // comes after the accounts, the home and the keys are in place.
    std::fs::create_dir_all(scratch.join("/etc/nginx/conf.d")).unwrap();
    std::fs::write(
        scratch.join("/etc/nginx/conf.d/broken.conf"),
        "not_a_directive_nginx_knows on;\n",
    )
    .unwrap();
    std::fs::write(scratch.join("/etc/skel/.profile-batten-test"), "# skel\n").unwrap();
    let before = snapshot(scratch.path());
    let ud = scratch.user_data(
        "late.yaml",
        &format!(
            "#cloud-config\nusers:\n  - name: carol\n    ssh_authorized_keys: [\"{KEY}\"]\nssh_pwauth: false\nbatten:\n  proxy:\n    - listen: 8081\n      upstream: 127.0.0.1:9\n      auth:\n        users: [{{name: admin}}]\n"
        ),
    );
    let out = scratch.batten("run", &ud, &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(70), "{said}");
    assert!(said.contains("nginx"), "{said}");
    assert!(
        said.contains("removed /home/carol, made by this run"),
        "{said}"
    );
    assert!(!said.contains("not undone"), "{said}");
    assert!(!scratch.join("/home/carol").exists());
    assert_same_bytes_outside_state(&before, scratch.path(), "a failed run");

    // A home that gained a file of someone else's meanwhile is kept, and
    // the run names it: batten removes only what it put there.
    let kept = Root::open(scratch.path()).unwrap();
    let owner = batten::host::root::Owner {
        uid: 0,
        gid: 0,
        mode: 0o755,
    };
    assert!(
        kept.make_home("/home/dave", owner, Some("/etc/skel"))
            .unwrap()
    );
    std::fs::write(scratch.join("/home/dave/notes.txt"), "mine\n").unwrap();
    let why = kept
        .remove_made_home("/home/dave", owner, Some("/etc/skel"))
        .unwrap()
        .expect("the home is kept");
    assert!(why.contains("/home/dave/notes.txt"), "{why}");
    assert!(scratch.join("/home/dave/notes.txt").exists());
    std::fs::remove_file(scratch.join("/home/dave/notes.txt")).unwrap();
    assert_eq!(
        kept.remove_made_home("/home/dave", owner, Some("/etc/skel"))
            .unwrap(),
        None
    );
    assert!(!scratch.join("/home/dave").exists());
}

/// A cloud-config written as a jinja template (`## template: jinja`, with
/// `{{ v1.instance_id }}` and `{{ ds.meta_data.* }}` as published examples
/// use them): validate renders it, the run renders it with the instance's
/// data and enforces the users and keys in it, verify renders it again the
/// same way; a name the data lacks is exit 65 with its line, nothing changed.
#[test]
fn a_jinja_templated_cloud_config_is_rendered_and_enforced() {
    const T: &str = "a_jinja_templated_cloud_config_is_rendered_and_enforced";
    if !privileged(T) || !have("useradd", T) {
        return;
    }
    let scratch = Scratch::new();
    let template = format!(
        "## template: jinja\n#cloud-config\nusers:\n  - name: {{{{ ds.meta_data.admin_name }}}}\n    gecos: \"admin of {{{{ v1.instance_id }}}} on {{{{ v1.platform }}}}\"\n    ssh_authorized_keys: [\"{KEY}\"]\nssh_pwauth: false\n"
    );
    let meta_text = "instance-id: iid-jinja-1\nadmin-name: dana\n";
    let ud = scratch.user_data("jinja.yaml", &template);
    let meta = scratch.user_data("meta.yaml", meta_text);

    // validate: rendered, valid, and says with what.
    let out = run(&["validate", &ud, "--meta-data", &meta]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("rendered the jinja template"), "{said}");
    assert!(!said.contains("not batten's"), "{said}");

    // run, from a NoCloud seed in the root: the template's user gets the
    // template's key, passwords go off.
    let seed = scratch.join("/var/lib/cloud/seed/nocloud");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(seed.join("user-data"), &template).unwrap();
    std::fs::write(seed.join("meta-data"), meta_text).unwrap();
    let out = run(&["run", "--root", &scratch.root_arg()]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let passwd = std::fs::read_to_string(scratch.join("/etc/passwd")).unwrap();
    assert!(
        passwd.contains("dana:x:") && passwd.contains("admin of iid-jinja-1 on nocloud"),
        "{passwd}"
    );
    let keys = std::fs::read_to_string(scratch.join("/home/dana/.ssh/authorized_keys")).unwrap();
    assert!(keys.contains(KEY), "{keys}");
    assert!(scratch.join("/var/lib/batten/instance-data.json").exists());
    // verify renders it again with the data the run kept.
    let out = run(&["verify", "--root", &scratch.root_arg(), "--format", "json"]);
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(report.contains("dana"), "{report}\n{}", text(&out));

    // A name the instance data lacks: exit 65 at its line, nothing changed.
    let fresh = Scratch::new();
    let untouched = snapshot(fresh.path());
    let bad = fresh.user_data(
        "bad.yaml",
        &template.replace("ds.meta_data.admin_name", "ds.meta_data.owner_name"),
    );
    let meta2 = fresh.user_data("meta.yaml", "instance-id: iid-jinja-2\n");
    let out = fresh.batten("run", &bad, &["--meta-data", &meta2]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(65), "{said}");
    assert!(said.contains(":4:1: jinja template:"), "{said}");
    assert!(said.contains("ds.meta_data.owner_name"), "{said}");
    assert_unchanged(&untouched, fresh.path());
}

/// Parts batten cannot act on (an `#include` of URLs, a shell script) are
/// named plainly by validate: the users and keys in them are not batten's,
/// and a file whose only keys sit there is not simply called valid.
#[test]
fn validate_says_which_parts_are_not_batten_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("include.txt");
    std::fs::write(&path, "#include\nhttps://example.org/cloud-config.yaml\n").unwrap();
    let out = run(&["validate", &path.display().to_string()]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("batten does not read text/x-include-url")
            && said.contains("users, keys and settings in them are not batten's"),
        "{said}"
    );
    assert!(said.contains("valid, but it gives no SSH key"), "{said}");
}

/// A headless Pi's owner reads the first boot's outcome on the card: the
/// seed's refusal with every error, or the host key fingerprints of a
/// hardened Pi; never a password hash.
#[test]
fn a_pi_card_gets_the_status_file_refused_or_hardened() {
    if !privileged("a_pi_card_gets_the_status_file_refused_or_hardened") {
        return;
    }
    let scratch = Scratch::new();
    std::fs::write(scratch.join("/boot/firmware/config.txt"), "arm_64bit=1\n").unwrap();
    std::fs::write(
        scratch.join("/boot/firmware/meta-data"),
        "instance_id: rpi-imager-1732000000\n",
    )
    .unwrap();
    let status_file = scratch.join("/boot/firmware/batten-status.txt");
    // A seed batten refuses (exit 65), as an owner may write it on a laptop.
    let refused_seed_run = || {
        std::fs::write(
            scratch.join("/boot/firmware/user-data"),
            "#cloud-config\nssh_pwauth: maybe\n",
        )
        .unwrap();
        let out = run(&["run", "--root", &scratch.root_arg()]);
        assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    };
    let out = run(&["install", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));

    // Bookworm's own headless files: left to Pi OS, and said so.
    std::fs::write(
        scratch.join("/boot/firmware/userconf.txt"),
        "pi:$6$abcdefgh$hash\n",
    )
    .unwrap();
    std::fs::write(scratch.join("/boot/firmware/ssh"), "").unwrap();
    let out = run(&["run", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    let status = std::fs::read_to_string(&status_file).expect("the status file");
    assert_left_to_pi_os(&status);
    assert!(!status.contains("$6$"), "{status}");
    std::fs::remove_file(scratch.join("/boot/firmware/userconf.txt")).unwrap();
    std::fs::remove_file(scratch.join("/boot/firmware/ssh")).unwrap();

    refused_seed_run();
    let status = std::fs::read_to_string(&status_file).expect("the status file");
    assert!(
        status.starts_with("batten on this Raspberry Pi: refused\n"),
        "{status}"
    );
    assert!(
        status.contains("ssh_pwauth"),
        "every error is there: {status}"
    );

    let example =
        std::fs::read_to_string(repo().join("cloud-init/examples/raspberry-pi-imager.yaml"))
            .unwrap();
    std::fs::write(scratch.join("/boot/firmware/user-data"), &example).unwrap();
    let out = run(&["run", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    let status = std::fs::read_to_string(&status_file).unwrap();
    assert!(
        status.starts_with("batten on this Raspberry Pi: hardened\n"),
        "{status}"
    );
    assert!(
        status.contains("instance-id: rpi-imager-1732000000"),
        "{status}"
    );
    assert!(
        status.contains("SHA256:"),
        "the host keys' fingerprints: {status}"
    );
    let json = std::fs::read_to_string(scratch.join("/boot/firmware/batten-status.json")).unwrap();
    for text in [&status, &json] {
        assert!(!text.contains("$5$") && !text.contains("$6$") && !text.contains("$y$"));
    }
    // No hash left on the card; the original is kept, root only.
    let seed = std::fs::read_to_string(scratch.join("/boot/firmware/user-data")).unwrap();
    assert!(!seed.contains("$5$") && seed.contains("name: pi"), "{seed}");
    assert!(
        seed.contains("lock_passwd: false"),
        "the rest stays: {seed}"
    );
    let kept = scratch.join("/var/lib/batten/user-data");
    assert!(std::fs::read_to_string(&kept).unwrap().contains("$5$"));
    let shadow = std::fs::read_to_string(scratch.join("/etc/shadow")).unwrap();
    let pi_line = |s: &str| s.lines().find(|l| l.starts_with("pi:")).map(str::to_string);
    assert!(pi_line(&shadow).unwrap().contains("$5$"));
    // Run again from the scrubbed seed: pi's password stays as it was set.
    let out = run(&["run", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    let again = std::fs::read_to_string(scratch.join("/etc/shadow")).unwrap();
    assert_eq!(pi_line(&again), pi_line(&shadow));

    // The first boot's verify seals, and says so on the card.
    let out = run(&["verify", "--root", &scratch.root_arg(), "--seal"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = std::fs::read_to_string(&status_file).unwrap();
    assert!(
        status.starts_with("batten on this Raspberry Pi: sealed\n"),
        "{status}"
    );
    assert!(status.contains("phase:       verify"), "{status}");
    // The card stays watched: the first-boot unit keeps its link.
    let link = scratch.join("/etc/systemd/system/sysinit.target.wants/batten.service");
    assert!(
        link.symlink_metadata().is_ok(),
        "batten.service stays enabled"
    );
    let out = run(&["run", "--root", &scratch.root_arg()]);
    assert!(text(&out).contains("is sealed"), "{}", text(&out));

    // Edited on a laptop: the next boot runs batten again with it.
    let edited = format!("{seed}users:\n  - name: pi2\n    ssh_authorized_keys: [{KEY}]\n");
    std::fs::write(scratch.join("/boot/firmware/user-data"), edited).unwrap();
    let out = run(&["run", "--root", &scratch.root_arg()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("edited on another computer"),
        "{}",
        text(&out)
    );
    let passwd = std::fs::read_to_string(scratch.join("/etc/passwd")).unwrap();
    assert!(passwd.contains("\npi2:"), "{passwd}");
    let out = run(&["verify", "--root", &scratch.root_arg(), "--seal"]);
    assert!(out.status.success(), "{}", text(&out));

    // An edit whose run is refused is never sealed over: the card says
    // why, and the next boot tries again.
    refused_seed_run();
    let out = run(&["verify", "--root", &scratch.root_arg(), "--seal"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("edited since batten last applied it"),
        "{}",
        text(&out)
    );
    let status = std::fs::read_to_string(&status_file).unwrap();
    assert!(
        status.starts_with("batten on this Raspberry Pi: not-sealed\n"),
        "{status}"
    );
    let out = run(&["run", "--root", &scratch.root_arg()]);
    assert_eq!(out.status.code(), Some(65), "tried again: {}", text(&out));
}
