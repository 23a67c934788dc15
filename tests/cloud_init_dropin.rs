//! The cloud-init drop-in batten writes, checked by Debian's own cloud-init:
//! its `schema` command accepts the file, and the module lists lose exactly
//! `ssh` and `set-passwords`. cloud-init is unpacked from Debian's package
//! (scripts/test.sh puts it in a cache and sets BATTEN_CLOUD_INIT), never
//! installed, because an installed cloud-init would run at the next boot.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn unpacked_cloud_init(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("BATTEN_CLOUD_INIT").map(PathBuf::from);
    match dir.filter(|d| d.join("usr/bin/cloud-init").exists()) {
        Some(d) => Some(d),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "{test}: BATTEN_CLOUD_INIT does not point at an unpacked cloud-init; scripts/test.sh sets it up"
            )
        }
        None => {
            eprintln!(
                "SKIP {test}: set BATTEN_CLOUD_INIT to an unpacked cloud-init package (scripts/test.sh does)"
            );
            None
        }
    }
}

#[test]
fn debian_cloud_init_accepts_the_dropin() {
    const T: &str = "debian_cloud_init_accepts_the_dropin";
    let Some(ci) = unpacked_cloud_init(T) else {
        return;
    };
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.join("/etc/cloud/cloud.cfg.d")).unwrap();
    std::fs::copy(
        ci.join("etc/cloud/cloud.cfg"),
        scratch.join("/etc/cloud/cloud.cfg"),
    )
    .unwrap();
    let ud = scratch.user_data("ci.yaml", &format!("#cloud-config\nusers:\n  - {{name: admin, ssh_authorized_keys: [\"{KEY}\"]}}\nchpasswd: {{expire: false}}\n"));
    let out = run(&["plan", "--root", &scratch.root_arg(), "--user-data", &ud]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("+++ b/etc/cloud/cloud.cfg.d/90-batten.cfg"),
        "{plan}"
    );
    assert!(plan.contains("`chpasswd` is NOT applied"), "{plan}");
    if !privileged(T) {
        return;
    }
    let out = run(&["run", "--root", &scratch.root_arg(), "--user-data", &ud]);
    assert!(out.status.success(), "{}", text(&out));
    let dropin = scratch.join("/etc/cloud/cloud.cfg.d/90-batten.cfg");
    let schema = Command::new("/usr/bin/python3")
        .arg(ci.join("usr/bin/cloud-init"))
        .args(["schema", "--config-file"])
        .arg(&dropin)
        .env("PYTHONPATH", ci.join("usr/lib/python3/dist-packages"))
        .output()
        .unwrap();
    assert!(
        schema.status.success(),
        "cloud-init schema refused the drop-in: {}",
        text(&schema)
    );
    assert!(text(&schema).contains("Valid"), "{}", text(&schema));

    // What cloud-init will run, merged its own way: no ssh, no set-passwords.
    let merged = Command::new("/usr/bin/python3")
        .args(["-c", "import sys, yaml\nfrom cloudinit import util\nbase = util.read_conf(sys.argv[1])\nd = util.read_conf(sys.argv[2])\nm = util.mergemanydict([d, base])\nprint(' '.join(str(x) for x in m['cloud_init_modules']))\nprint(' '.join(str(x) for x in m['cloud_config_modules']))\n"])
        .arg(scratch.join("/etc/cloud/cloud.cfg"))
        .arg(&dropin)
        .env("PYTHONPATH", ci.join("usr/lib/python3/dist-packages"))
        .output()
        .unwrap();
    assert!(merged.status.success(), "{}", text(&merged));
    let lists = String::from_utf8_lossy(&merged.stdout);
    let words: Vec<&str> = lists.split_whitespace().collect();
    assert!(
        words.contains(&"users-groups") && words.contains(&"runcmd"),
        "{lists}"
    );
    assert!(
        !words.contains(&"ssh") && !words.contains(&"set-passwords"),
        "{lists}"
    );
}
