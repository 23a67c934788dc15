//! Making an account as `useradd` makes it, in the staging copy of the
//! account files, without starting a program.
//!
//! Under software emulation `useradd` alone costs a first boot over a
//! second (6 ms natively), and sshd waits for it. Only what batten plans
//! is modelled (`useradd --no-create-home --home-dir H [--shell S]
//! [--comment C] [--groups G,...] NAME` and `groupadd NAME`), with the
//! settings of `login.defs` and `/etc/default/useradd` that change its
//! result. Anything else (a setting not modelled, NIS lines, no shadow
//! files, a full ID range) gives [`NotModelled`], and the caller runs the
//! real tool: the test compares both on copies of real roots.

use std::collections::BTreeSet;

/// Why the tool must do it: a case this module does not model.
#[derive(Debug, PartialEq, Eq)]
pub struct NotModelled(pub String);

/// The account files as text, changed in place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files {
    /// /etc/passwd.
    pub passwd: String,
    /// /etc/shadow.
    pub shadow: String,
    /// /etc/group.
    pub group: String,
    /// /etc/gshadow.
    pub gshadow: String,
    /// /etc/subuid, when the root has one.
    pub subuid: Option<String>,
    /// /etc/subgid, when the root has one.
    pub subgid: Option<String>,
}

/// What `login.defs` and `/etc/default/useradd` say, as far as it changes
/// the lines of a new account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defaults {
    uid: (u32, u32),
    gid: (u32, u32),
    usergroups: bool,
    /// PASS_MIN_DAYS, PASS_MAX_DAYS, PASS_WARN_AGE as shadow fields.
    ageing: [String; 3],
    sub_uid: (u64, u64, u64),
    sub_gid: (u64, u64, u64),
    shell: String,
    group: Option<u32>,
    inactive: String,
    expire: String,
}

/// login.defs settings that change what useradd writes in ways this
/// module does not model.
const LOGIN_DEFS_NOT_MODELLED: &[&str] = &[
    "MAX_MEMBERS_PER_GROUP",
    "USE_TCB",
    "TCB_AUTH_GROUP",
    "TCB_SYMLINKS",
    "USERADD_CMD",
];

/// /etc/default/useradd settings that are modelled or do not change the
/// account files when no home is made.
const USERADD_KNOWN: &[&str] = &[
    "GROUP",
    "HOME",
    "INACTIVE",
    "EXPIRE",
    "SHELL",
    "SKEL",
    "USRSKEL",
    "CREATE_MAIL_SPOOL",
    "LOG_INIT",
];

/// `KEY=VALUE` lines of /etc/default/useradd, comments and blanks left out.
fn useradd_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

impl Defaults {
    /// Read from the root's files; `NotModelled` when they ask for
    /// something this module does not do.
    pub fn read(login_defs: &str, useradd: Option<&str>) -> Result<Defaults, NotModelled> {
        let get = |k: &str| super::login_defs_value(login_defs, k);
        if let Some(k) = LOGIN_DEFS_NOT_MODELLED.iter().find(|k| get(k).is_some()) {
            return Err(NotModelled(format!("login.defs sets {k}")));
        }
        let num = |k: &str, default: u64| -> Result<u64, NotModelled> {
            get(k).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| NotModelled(format!("login.defs: {k} {v}")))
            })
        };
        let id = |k: &str, default: u64| -> Result<u32, NotModelled> {
            u32::try_from(num(k, default)?).map_err(|_| NotModelled(format!("login.defs: {k}")))
        };
        // An unset or negative ageing setting leaves the field empty.
        let ageing = |k: &str| match get(k) {
            Some(v) if v.parse::<i64>().is_ok_and(|n| n >= 0) => v.to_string(),
            _ => String::new(),
        };
        let Some(useradd) = useradd else {
            return Err(NotModelled("there is no /etc/default/useradd".into()));
        };
        let defaults = useradd_settings(useradd);
        if let Some((k, _)) = defaults
            .iter()
            .find(|(k, _)| !USERADD_KNOWN.contains(&k.as_str()))
        {
            return Err(NotModelled(format!("/etc/default/useradd sets {k}")));
        }
        let dget = |k: &str| {
            defaults
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        if dget("CREATE_MAIL_SPOOL").is_some_and(|v| v.eq_ignore_ascii_case("yes")) {
            return Err(NotModelled(
                "/etc/default/useradd creates a mail spool".into(),
            ));
        }
        let Some(shell) = dget("SHELL") else {
            return Err(NotModelled("/etc/default/useradd sets no SHELL".into()));
        };
        let field = |v: Option<&str>| match v {
            Some(v) if v != "-1" => v.to_string(),
            _ => String::new(),
        };
        Ok(Defaults {
            uid: (id("UID_MIN", 1000)?, id("UID_MAX", 60000)?),
            gid: (id("GID_MIN", 1000)?, id("GID_MAX", 60000)?),
            usergroups: get("USERGROUPS_ENAB").is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            ageing: [
                ageing("PASS_MIN_DAYS"),
                ageing("PASS_MAX_DAYS"),
                ageing("PASS_WARN_AGE"),
            ],
            sub_uid: (
                num("SUB_UID_MIN", 100_000)?,
                num("SUB_UID_MAX", 600_100_000)?,
                num("SUB_UID_COUNT", 65536)?,
            ),
            sub_gid: (
                num("SUB_GID_MIN", 100_000)?,
                num("SUB_GID_MAX", 600_100_000)?,
                num("SUB_GID_COUNT", 65536)?,
            ),
            shell: shell.to_string(),
            group: dget("GROUP").and_then(|g| g.parse().ok()),
            inactive: field(dget("INACTIVE")),
            expire: field(dget("EXPIRE")),
        })
    }
}

/// What `useradd` is asked, parsed from the argv batten plans.
#[derive(Debug, PartialEq, Eq)]
struct NewUser<'a> {
    name: &'a str,
    home: &'a str,
    shell: Option<&'a str>,
    comment: &'a str,
    groups: Vec<&'a str>,
}

fn parse_useradd(argv: &[String]) -> Result<NewUser<'_>, NotModelled> {
    let not = || NotModelled(format!("useradd {}", argv[1..].join(" ")));
    let mut user = NewUser {
        name: "",
        home: "",
        shell: None,
        comment: "",
        groups: Vec::new(),
    };
    let mut args = argv[1..].iter();
    let mut create_home = true;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-create-home" => create_home = false,
            "--home-dir" => user.home = args.next().ok_or_else(not)?,
            "--shell" => user.shell = Some(args.next().ok_or_else(not)?),
            "--comment" => user.comment = args.next().ok_or_else(not)?,
            "--groups" => {
                user.groups = args.next().ok_or_else(not)?.split(',').collect();
            }
            name if !name.starts_with('-') && user.name.is_empty() => user.name = name,
            _ => return Err(not()),
        }
    }
    if create_home || user.name.is_empty() || user.home.is_empty() {
        return Err(not());
    }
    // Validation already refuses these; a field that could still split a
    // line is left to useradd, which refuses it too.
    let fields = [user.name, user.home, user.shell.unwrap_or(""), user.comment];
    if fields
        .iter()
        .chain(&user.groups)
        .any(|f| f.contains([':', '\n', '\r', '\0']))
    {
        return Err(not());
    }
    Ok(user)
}

/// Names and numbers of a passwd- or group-like file; `NotModelled` for
/// NIS lines (`+`, `-`), which useradd treats specially.
fn entries(text: &str) -> Result<Vec<Vec<&str>>, NotModelled> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if line.starts_with('+') || line.starts_with('-') {
            return Err(NotModelled("NIS entries in the account files".into()));
        }
        out.push(line.split(':').collect());
    }
    Ok(out)
}

fn ids(text: &str) -> Result<BTreeSet<u32>, NotModelled> {
    Ok(entries(text)?
        .iter()
        .filter_map(|f| f.get(2).and_then(|id| id.parse().ok()))
        .collect())
}

fn has_name(text: &str, name: &str) -> bool {
    text.lines().any(|l| l.split(':').next() == Some(name))
}

/// A new id as shadow-utils picks one: one above the highest in the range,
/// else the lowest free; `preferred` first when it is free and in range.
fn new_id(used: &BTreeSet<u32>, (min, max): (u32, u32), preferred: Option<u32>) -> Option<u32> {
    if let Some(p) = preferred.filter(|p| (min..=max).contains(p) && !used.contains(p)) {
        return Some(p);
    }
    let next = used
        .range(min..=max)
        .next_back()
        .map_or(Some(min), |top| top.checked_add(1));
    match next {
        Some(id) if id <= max => Some(id),
        _ => (min..=max).find(|id| !used.contains(id)),
    }
}

/// The first free range of `count` subordinate ids in `min..=max`.
fn free_range(text: &str, (min, max, count): (u64, u64, u64)) -> Option<u64> {
    let mut taken: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':').skip(1);
            let start = f.next()?.parse::<u64>().ok()?;
            let n = f.next()?.parse::<u64>().ok()?;
            Some((start, start.saturating_add(n)))
        })
        .collect();
    taken.sort_unstable();
    let mut start = min;
    for (s, e) in taken {
        if start.saturating_add(count) <= s {
            break;
        }
        start = start.max(e);
    }
    (start.saturating_add(count).saturating_sub(1) <= max).then_some(start)
}

fn append(text: &mut String, line: &str) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
}

/// Add `name` to the member list (field `field`) of `group`'s line.
fn add_member(text: &str, group: &str, name: &str, field: usize) -> String {
    let mut out = String::with_capacity(text.len() + name.len() + 1);
    for line in text.lines() {
        let mut fields: Vec<String> = line.split(':').map(String::from).collect();
        if fields.first().map(String::as_str) == Some(group) && fields.len() > field {
            let members = &mut fields[field];
            if !members.split(',').any(|m| m == name) {
                if !members.is_empty() {
                    members.push(',');
                }
                members.push_str(name);
            }
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `groupadd NAME` on `files`.
pub fn groupadd(
    files: &mut Files,
    defaults: &Defaults,
    argv: &[String],
) -> Result<(), NotModelled> {
    let [_, name] = argv else {
        return Err(NotModelled(format!("groupadd {}", argv[1..].join(" "))));
    };
    if has_name(&files.group, name) {
        return Err(NotModelled(format!("group {name} exists")));
    }
    let gid = new_id(&ids(&files.group)?, defaults.gid, None)
        .ok_or_else(|| NotModelled("no free group id".into()))?;
    append(&mut files.group, &format!("{name}:x:{gid}:"));
    append(&mut files.gshadow, &format!("{name}:!::"));
    Ok(())
}

/// `useradd ...` (the form batten plans) on `files`; `today` is the day
/// number (days since 1970) for the shadow line.
pub fn useradd(
    files: &mut Files,
    defaults: &Defaults,
    argv: &[String],
    today: u64,
) -> Result<(), NotModelled> {
    let user = parse_useradd(argv)?;
    let name = user.name;
    if has_name(&files.passwd, name) {
        return Err(NotModelled(format!("user {name} exists")));
    }
    for g in &user.groups {
        if !has_name(&files.group, g) {
            return Err(NotModelled(format!("group {g} does not exist")));
        }
    }
    let uid = new_id(&ids(&files.passwd)?, defaults.uid, None)
        .ok_or_else(|| NotModelled("no free user id".into()))?;
    let gid = if defaults.usergroups {
        if has_name(&files.group, name) {
            return Err(NotModelled(format!("a group {name} exists")));
        }
        let gid = new_id(&ids(&files.group)?, defaults.gid, Some(uid))
            .ok_or_else(|| NotModelled("no free group id".into()))?;
        append(&mut files.group, &format!("{name}:x:{gid}:"));
        append(&mut files.gshadow, &format!("{name}:!::"));
        gid
    } else {
        defaults
            .group
            .ok_or_else(|| NotModelled("no GROUP in /etc/default/useradd".into()))?
    };
    for g in &user.groups {
        files.group = add_member(&files.group, g, name, 3);
        files.gshadow = add_member(&files.gshadow, g, name, 3);
    }
    let shell = user.shell.unwrap_or(&defaults.shell);
    append(
        &mut files.passwd,
        &format!(
            "{name}:x:{uid}:{gid}:{}:{}:{shell}",
            user.comment, user.home
        ),
    );
    let [min, max, warn] = &defaults.ageing;
    append(
        &mut files.shadow,
        &format!(
            "{name}:!:{today}:{min}:{max}:{warn}:{}:{}:",
            defaults.inactive, defaults.expire
        ),
    );
    for (file, range) in [
        (&mut files.subuid, defaults.sub_uid),
        (&mut files.subgid, defaults.sub_gid),
    ] {
        if let Some(text) = file
            && range.2 > 0
            && !has_name(text, name)
        {
            let start = free_range(text, range)
                .ok_or_else(|| NotModelled("no free subordinate id range".into()))?;
            append(text, &format!("{name}:{start}:{}", range.2));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_DEFS: &str = "MAIL_DIR /var/mail\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\nUID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\nGID_MIN 1000\nGID_MAX 60000\nUSERGROUPS_ENAB yes\nENCRYPT_METHOD SHA512\n";

    fn argv(words: &str) -> Vec<String> {
        words.split(' ').map(String::from).collect()
    }

    fn debian() -> Defaults {
        Defaults::read(DEBIAN_DEFS, Some("# comment\nSHELL=/bin/sh\n")).unwrap()
    }

    #[test]
    fn a_user_lands_as_debians_useradd_writes_it() {
        let mut files = Files {
            passwd: "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n".into(),
            shadow: "root:*:19000:0:99999:7:::\n".into(),
            group: "root:x:0:\nadm:x:4:\nsudo:x:27:pi\npi:x:1000:\n".into(),
            gshadow: "root:*::\nadm:*::\nsudo:*::pi\npi:!::\n".into(),
            subuid: Some("pi:100000:65536\n".into()),
            subgid: Some(String::new()),
        };
        useradd(
            &mut files,
            &debian(),
            &argv("useradd --no-create-home --home-dir /home/admin --shell /bin/bash --groups sudo,adm admin"),
            20792,
        )
        .unwrap();
        assert!(
            files
                .passwd
                .ends_with("admin:x:1001:1001::/home/admin:/bin/bash\n")
        );
        assert!(files.shadow.ends_with("admin:!:20792:0:99999:7:::\n"));
        assert!(
            files
                .group
                .contains("\nadm:x:4:admin\nsudo:x:27:pi,admin\n")
        );
        assert!(files.group.ends_with("admin:x:1001:\n"));
        assert!(files.gshadow.contains("\nsudo:*::pi,admin\n"));
        assert!(files.gshadow.ends_with("admin:!::\n"));
        assert_eq!(
            files.subuid.as_deref(),
            Some("pi:100000:65536\nadmin:165536:65536\n")
        );
        assert_eq!(files.subgid.as_deref(), Some("admin:100000:65536\n"));
    }

    #[test]
    fn ids_follow_shadow_utils() {
        let used: BTreeSet<u32> = [0, 1000, 1002, 65534].into();
        assert_eq!(new_id(&used, (1000, 60000), None), Some(1003));
        assert_eq!(new_id(&used, (1000, 60000), Some(1001)), Some(1001));
        assert_eq!(new_id(&used, (1000, 60000), Some(1002)), Some(1003));
        let full: BTreeSet<u32> = [1000, 1002].into();
        assert_eq!(new_id(&full, (1000, 1002), None), Some(1001));
        assert_eq!(new_id(&BTreeSet::new(), (1000, 60000), None), Some(1000));
        assert_eq!(
            free_range(
                "a:100000:65536\nb:300000:10\n",
                (100_000, 600_100_000, 65536)
            ),
            Some(165_536)
        );
        assert_eq!(free_range("", (100_000, 100_010, 65536)), None);
    }

    /// The real `useradd --prefix` and this module, on copies of this
    /// machine's account files: the same lines.
    #[test]
    fn the_same_lines_as_the_real_useradd() {
        if !nix::unistd::geteuid().is_root() || crate::host::exec::find_program("useradd").is_none()
        {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "needs root and useradd, and under CI=true a skip is a failure"
            );
            eprintln!("skipped: needs root and useradd");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(etc.join("default")).unwrap();
        let read = |f: &str| std::fs::read_to_string(format!("/etc/{f}")).ok();
        for f in [
            "passwd",
            "shadow",
            "group",
            "gshadow",
            "subuid",
            "subgid",
            "login.defs",
            "default/useradd",
        ] {
            if let Some(text) = read(f) {
                std::fs::write(etc.join(f), text).unwrap();
            }
        }
        let Ok(defaults) = Defaults::read(
            &read("login.defs").unwrap_or_default(),
            read("default/useradd").as_deref(),
        ) else {
            eprintln!("skipped: this machine's settings are not modelled");
            return;
        };
        let mut files = Files {
            passwd: read("passwd").unwrap(),
            shadow: read("shadow").unwrap(),
            group: read("group").unwrap(),
            gshadow: read("gshadow").unwrap(),
            subuid: read("subuid"),
            subgid: read("subgid"),
        };
        let today = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86400;
        let steps = [
            "groupadd batten-eq-g",
            "useradd --no-create-home --home-dir /home/batten-eq --shell /bin/bash --comment Batten --groups batten-eq-g,adm batten-eq",
            "useradd --no-create-home --home-dir /home/batten-eq2 batten-eq2",
        ];
        for step in steps {
            let words = argv(step);
            let out = std::process::Command::new(&words[0])
                .arg("--prefix")
                .arg(dir.path())
                .args(&words[1..])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{step}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            match words[0].as_str() {
                "groupadd" => groupadd(&mut files, &defaults, &words).unwrap(),
                _ => useradd(&mut files, &defaults, &words, today).unwrap(),
            }
        }
        let real = |f: &str| std::fs::read_to_string(etc.join(f)).ok();
        assert_eq!(real("passwd").unwrap(), files.passwd);
        assert_eq!(real("shadow").unwrap(), files.shadow);
        assert_eq!(real("group").unwrap(), files.group);
        assert_eq!(real("gshadow").unwrap(), files.gshadow);
        assert_eq!(real("subuid"), files.subuid);
        assert_eq!(real("subgid"), files.subgid);
    }

    #[test]
    fn a_field_that_would_split_a_line_is_left_to_useradd() {
        let mut files = Files::default();
        let mut words = argv("useradd --no-create-home --home-dir /home/a --comment x a");
        words[5] = "x:0:0".into();
        assert!(useradd(&mut files, &debian(), &words, 1).is_err());
        words[5] = "x\nroot::0:0::/:/bin/sh".into();
        assert!(useradd(&mut files, &debian(), &words, 1).is_err());
        assert_eq!(files, Files::default(), "nothing written");
    }

    #[test]
    fn what_is_not_modelled_is_left_to_the_tool() {
        assert!(Defaults::read("MAX_MEMBERS_PER_GROUP 10\n", Some("SHELL=/bin/sh\n")).is_err());
        assert!(Defaults::read(DEBIAN_DEFS, None).is_err());
        assert!(
            Defaults::read(DEBIAN_DEFS, Some("SHELL=/bin/sh\nCREATE_MAIL_SPOOL=yes\n")).is_err()
        );
        assert!(Defaults::read(DEBIAN_DEFS, Some("SHELL=/bin/sh\nSOMETHING=1\n")).is_err());
        let mut nis = Files {
            passwd: "root:x:0:0::/root:/bin/sh\n+::::::\n".into(),
            ..Files::default()
        };
        assert!(
            useradd(
                &mut nis,
                &debian(),
                &argv("useradd --no-create-home --home-dir /home/a a"),
                1
            )
            .is_err()
        );
        let mut files = Files::default();
        assert!(
            useradd(
                &mut files,
                &debian(),
                &argv("useradd --home-dir /home/a a"),
                1
            )
            .is_err(),
            "a home it would make"
        );
        assert!(
            useradd(
                &mut files,
                &debian(),
                &argv("useradd --no-create-home --home-dir /home/a --groups nosuch a"),
                1
            )
            .is_err()
        );
    }
}
