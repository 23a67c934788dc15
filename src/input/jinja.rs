//! Cloud-config written as a Jinja template (`## template: jinja` on the
//! first line), rendered the way cloud-init renders it, so that the users,
//! keys and settings in it are batten's to enforce like any others.
//!
//! cloud-init renders such a document with its instance data (what
//! `cloud-init query --all` shows): `v1.*` (`instance_id`,
//! `local_hostname`, `cloud_name`, `platform`, `region`, ...), `ds.meta_data`
//! (the datasource's meta-data as given), with every `v1` key also at the
//! top level and every key holding `-` also under its `_` spelling. batten
//! builds the same names from what it knows at first boot: the meta-data,
//! the instance-id, the source, the image's hostname.
//!
//! Where batten differs, on purpose: a variable the data does not have is
//! an error with its line (cloud-init renders `CI_MISSING_JINJA_VAR/...`
//! and goes on, which would put that text into a user's name or a key);
//! and the template runs in a sandbox: no loader (so no `include`,
//! `import` or `extends` of any file), no network, and a bounded amount of
//! work, since the user-data is hostile until validated.

use serde_json::{Map, Value as Json};

/// How much work one template may do (minijinja's fuel: about one unit per
/// instruction). Generous for any real cloud-config; a loop over a huge
/// range stops with an error instead of holding up the boot.
const FUEL: u64 = 2_000_000;

/// The largest rendered document batten reads, as for user-data itself.
const MAX_RENDERED: usize = crate::input::decode::MAX_USER_DATA_BYTES;

/// The instance data a template is rendered with.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceData {
    /// `instance-data.json` as cloud-init names it: `v1` and `ds`.
    data: Json,
    /// Made up for `validate`, which runs without an instance: the values
    /// are placeholders and say so.
    pub placeholder: bool,
    /// Where templates are rendered.
    renderer: Renderer,
}

/// Where a template is rendered. Fuel bounds a template's work but not its
/// memory (`{% set b = a ~ a %}` doubles a string in one step), so the
/// binary renders in a child of itself with its memory and CPU time
/// limited; a template that needs more fails alone, and batten goes on to
/// say so. Tests and pure callers render in the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renderer {
    /// Here, with fuel and an output cap only.
    InProcess,
    /// In `EXE render-jinja`, limited.
    Child(std::path::PathBuf),
}

/// The limits of the child that renders a template.
const CHILD_LIMITS: crate::host::exec::Limits = crate::host::exec::Limits {
    memory_bytes: 512 * 1024 * 1024,
    cpu_seconds: 10,
    output_bytes: MAX_RENDERED + 4096,
};

/// What batten knows about the instance, for [`InstanceData::new`].
#[derive(Clone, Debug, Default)]
pub struct Known<'a> {
    /// The instance-id.
    pub instance_id: &'a str,
    /// The platform as cloud-init names it (`nocloud`, `ec2`, `openstack`,
    /// `hetzner`, `digitalocean`, `gce`), or `unknown`.
    pub platform: &'a str,
    /// Where the data came from, in words (`v1.subplatform`).
    pub subplatform: &'a str,
    /// The hostname, when meta-data or the image names one.
    pub local_hostname: Option<&'a str>,
    /// The meta-data document, as JSON (a mapping).
    pub meta_data: Option<Json>,
    /// The kernel's machine name (`uname -m`), when batten runs on the
    /// machine itself; an image's is not known before it boots.
    pub machine: Option<String>,
}

impl InstanceData {
    /// The instance data for a run, with the names and values cloud-init's
    /// `instance-data.json` has for the same source (a NoCloud seed's
    /// `cloud_name` is `unknown` unless its meta-data names one, its
    /// `cloud_id` `nocloud`; what is not known is null).
    pub fn new(known: &Known) -> InstanceData {
        let mut meta = match &known.meta_data {
            Some(Json::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        // cloud-init's meta_data always holds the instance-id.
        if !meta.contains_key("instance-id") && !meta.contains_key("instance_id") {
            meta.insert("instance-id".into(), known.instance_id.into());
        }
        let given = |k: &str| meta.get(k).and_then(Json::as_str).map(str::to_string);
        let (cloud_name, cloud_id) = match known.platform {
            "ec2" => ("aws".to_string(), "aws".to_string()),
            "nocloud" | "unknown" => (
                given("cloud-name").unwrap_or_else(|| "unknown".into()),
                known.platform.to_string(),
            ),
            other => (other.to_string(), other.to_string()),
        };
        let region = given("region");
        let zone = given("availability-zone").or_else(|| given("availability_zone"));
        let mut v1 = Map::new();
        for (names, value) in [
            (
                &["instance_id", "instance-id"][..],
                Json::from(known.instance_id),
            ),
            (
                &["local_hostname", "local-hostname"],
                known.local_hostname.into(),
            ),
            (&["cloud_name", "cloud-name"], cloud_name.into()),
            (&["cloud_id"], cloud_id.into()),
            (&["platform"], known.platform.into()),
            (&["subplatform"], known.subplatform.into()),
            (&["region"], region.into()),
            (&["availability_zone", "availability-zone"], zone.into()),
            (&["machine"], known.machine.clone().into()),
            (&["public_ssh_keys"], Json::Array(Vec::new())),
        ] {
            for name in names {
                v1.insert((*name).to_string(), value.clone());
            }
        }
        InstanceData {
            data: serde_json::json!({ "v1": v1, "ds": { "meta_data": meta } }),
            placeholder: false,
            renderer: Renderer::InProcess,
        }
    }

    /// Values that stand in for an instance when a file is only checked
    /// (`batten validate`): every `v1` name exists, so a template is
    /// checked for its syntax and its names, not for a machine's values.
    pub fn placeholder(meta_data: Option<Json>) -> InstanceData {
        let id = meta_data
            .as_ref()
            .and_then(|m| m.get("instance-id").or_else(|| m.get("instance_id")))
            .and_then(Json::as_str)
            .unwrap_or("i-validate-placeholder")
            .to_string();
        let hostname = meta_data
            .as_ref()
            .and_then(|m| m.get("local-hostname").or_else(|| m.get("local_hostname")))
            .and_then(Json::as_str)
            .unwrap_or("validate-placeholder")
            .to_string();
        let mut data = InstanceData::new(&Known {
            instance_id: &id,
            platform: "nocloud",
            subplatform: "batten validate",
            local_hostname: Some(&hostname),
            meta_data,
            machine: Some(std::env::consts::ARCH.to_string()),
        });
        data.placeholder = true;
        data
    }

    /// The instance's host name (`v1.local_hostname`: meta-data's, else the
    /// image's), for what carries the machine's name.
    pub fn local_hostname(&self) -> Option<&str> {
        self.data.get("v1")?.get("local_hostname")?.as_str()
    }

    /// The JSON batten keeps beside its copy of the user-data, so that
    /// verify renders the template exactly as the run did.
    pub fn to_json(&self) -> Json {
        self.data.clone()
    }

    /// Back from [`InstanceData::to_json`].
    pub fn from_json(data: Json) -> InstanceData {
        InstanceData {
            data,
            placeholder: false,
            renderer: Renderer::InProcess,
        }
    }

    /// The same data, with templates rendered by `renderer`.
    pub fn rendered_by(mut self, renderer: Renderer) -> InstanceData {
        self.renderer = renderer;
        self
    }

    /// The names a template sees: the data, `v1`'s keys at the top level
    /// too, and `_` aliases of keys that hold `-`, as cloud-init gives them.
    fn context(&self) -> Json {
        let mut top = aliased(&self.data);
        if let (Json::Object(top), Some(Json::Object(v1))) = (&mut top, self.data.get("v1")) {
            for (k, v) in v1 {
                top.entry(k.clone()).or_insert_with(|| aliased(v));
            }
        }
        top
    }
}

/// A copy of `value` in which every mapping key holding `-` is also there
/// spelled with `_` (`local-hostname` and `local_hostname`).
fn aliased(value: &Json) -> Json {
    match value {
        Json::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let v = aliased(v);
                if k.contains('-') {
                    out.entry(k.replace('-', "_")).or_insert_with(|| v.clone());
                }
                out.insert(k.clone(), v);
            }
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(items.iter().map(aliased).collect()),
        other => other.clone(),
    }
}

/// Why a template did not render: a line of the template (1-based, the
/// header line counted) and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// The line in the document, the `## template: jinja` line being line 1.
    pub line: u64,
    /// What went wrong, and what to do.
    pub message: String,
}

/// Render a document whose first line is the `## template: jinja` header.
/// The result keeps that line's place as an empty line, so that line
/// numbers in the rendered document are the template's wherever a line of
/// the template makes one line of output.
pub fn render(document: &str, data: &InstanceData) -> Result<String, RenderError> {
    match &data.renderer {
        Renderer::InProcess => render_here(document, data),
        Renderer::Child(exe) => render_in_child(exe, document, data),
    }
}

/// Render in `EXE render-jinja` with [`CHILD_LIMITS`]: the document and
/// the data go in as JSON, the text (or the error as JSON) comes out.
fn render_in_child(
    exe: &std::path::Path,
    document: &str,
    data: &InstanceData,
) -> Result<String, RenderError> {
    let input = serde_json::json!({ "document": document, "data": data.data }).to_string();
    let too_much = |why: String| RenderError {
        line: 1,
        message: format!(
            "jinja template: rendering it {why} (the limits are {} MiB of memory and {} s of CPU); this is not user-data batten will read",
            CHILD_LIMITS.memory_bytes / (1024 * 1024),
            CHILD_LIMITS.cpu_seconds
        ),
    };
    let out = crate::host::exec::run_self(exe, &["render-jinja"], input.as_bytes(), &CHILD_LIMITS)
        .map_err(|e| too_much(format!("could not start ({e})")))?;
    match out.code {
        Some(0) => String::from_utf8(out.stdout).map_err(|_| RenderError {
            line: 1,
            message: "jinja template: the result is not UTF-8 text".into(),
        }),
        Some(65) => {
            let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            Err(RenderError {
                line: e["line"].as_u64().unwrap_or(1),
                message: e["message"]
                    .as_str()
                    .unwrap_or("jinja template: failed")
                    .to_string(),
            })
        }
        _ => Err(too_much(format!(
            "stopped ({})",
            out.stderr
                .lines()
                .next()
                .unwrap_or("a limit was hit")
                .trim()
        ))),
    }
}

/// The child's side of [`render_in_child`]: `input` as it sent it, and
/// what to write back with the exit code.
pub fn render_for_parent(input: &[u8]) -> (i32, Vec<u8>) {
    let Ok(request) = serde_json::from_slice::<Json>(input) else {
        return (2, b"render-jinja reads the JSON batten sends it".to_vec());
    };
    let document = request["document"].as_str().unwrap_or_default();
    let data = InstanceData::from_json(request["data"].clone());
    match render_here(document, &data) {
        Ok(text) => (0, text.into_bytes()),
        Err(e) => (
            65,
            serde_json::json!({ "line": e.line, "message": e.message })
                .to_string()
                .into_bytes(),
        ),
    }
}

/// Render here: fuel and the output cap are the only limits.
fn render_here(document: &str, data: &InstanceData) -> Result<String, RenderError> {
    let (header, body) = document.split_once('\n').unwrap_or((document, ""));
    if !is_header(header) {
        return Err(RenderError {
            line: 1,
            message: "jinja template: the first line is not `## template: jinja`; cloud-init skips such a part, so its settings would not be applied by either tool".into(),
        });
    }
    let mut env = minijinja::Environment::new();
    // Printing a name the data lacks is an error; testing it (`{% if
    // v1.region %}`) is false, as in cloud-init.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    // cloud-init's jinja environment: trailing newlines kept, blocks trimmed.
    env.set_trim_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_fuel(Some(FUEL));
    let context = minijinja::Value::from_serialize(data.context());
    let mut out = Capped(Vec::new());
    let rendered = env
        .template_from_str(body)
        .and_then(|t| t.render_captured_to(context, &mut out).map(|_| ()))
        .map(|_| ())
        .map_err(|e| {
        let line = e.line().unwrap_or(1);
        let source = body.lines().nth(line.saturating_sub(1)).unwrap_or("").trim();
        let what = match e.kind() {
            minijinja::ErrorKind::UndefinedError => format!(
                "the template uses a name the instance data does not have (`{source}`); batten has {}",
                names(&data.context())
            ),
            minijinja::ErrorKind::TemplateNotFound => {
                "a template may not include, import or extend another file: batten renders user-data without file or network access".to_string()
            }
            minijinja::ErrorKind::WriteFailure => format!(
                "the template renders to more than {MAX_RENDERED} bytes; this is not user-data batten will read"
            ),
            minijinja::ErrorKind::OutOfFuel => {
                "the template does too much work to be user-data (a loop over a huge range?)".to_string()
            }
            _ => format!(
                "{} (`{source}`)",
                e.detail().map_or_else(|| e.kind().to_string(), str::to_string)
            ),
        };
        RenderError {
            line: u64::try_from(line).unwrap_or(u64::MAX).saturating_add(1),
            message: format!("jinja template: {what}"),
        }
    });
    rendered?;
    let text = String::from_utf8(out.0).map_err(|_| RenderError {
        line: 1,
        message: "jinja template: the result is not UTF-8 text".into(),
    })?;
    Ok(format!("\n{text}"))
}

/// The rendered text, refusing to grow past what batten reads as
/// user-data: fuel bounds the work, this bounds the memory.
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED {
            return Err(std::io::Error::other("too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The line cloud-init reads as a jinja template's header: `##`, optional
/// space, `template:`, `jinja`, any case.
fn is_header(line: &str) -> bool {
    let line = line.trim().to_ascii_lowercase();
    line.strip_prefix("##")
        .map(str::trim_start)
        .and_then(|l| l.strip_prefix("template:"))
        .is_some_and(|l| l.trim() == "jinja")
}

/// The names a template may use, for the message about one it may not.
fn names(context: &Json) -> String {
    let mut out = Vec::new();
    if let Some(Json::Object(v1)) = context.get("v1") {
        out.extend(v1.keys().map(|k| format!("v1.{k}")));
    }
    if let Some(Json::Object(meta)) = context.get("ds").and_then(|d| d.get("meta_data")) {
        out.extend(meta.keys().map(|k| format!("ds.meta_data.{k}")));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> InstanceData {
        InstanceData::new(&Known {
            instance_id: "iid-42",
            platform: "nocloud",
            subplatform: "seed-dir (/var/lib/cloud/seed/nocloud)",
            local_hostname: Some("web1"),
            meta_data: Some(serde_json::json!({
                "instance-id": "iid-42",
                "local-hostname": "web1",
                "owner": {"team-name": "ops"}
            })),
            machine: Some("x86_64".into()),
        })
    }

    #[test]
    fn the_names_cloud_init_gives_are_there() {
        let out = render(
            "## template: jinja\n#cloud-config\n# {{ v1.instance_id }} {{ instance_id }} {{ v1.cloud_name }}\n# {{ ds.meta_data['local-hostname'] }} {{ ds.meta_data.local_hostname }} {{ ds.meta_data.owner.team_name }}\n# {{ local_hostname }} {{ v1.region }}\n",
            &data(),
        )
        .unwrap();
        assert_eq!(
            out,
            "\n#cloud-config\n# iid-42 iid-42 unknown\n# web1 web1 ops\n# web1 None\n"
        );
        // Testing a name the data lacks is false; printing it is an error.
        let out = render(
            "## template: jinja\n{% if v1.nothing %}a{% else %}b{% endif %}\n",
            &data(),
        )
        .unwrap();
        assert_eq!(out, "\nb");
    }

    #[test]
    fn control_structures_render_and_lines_keep_their_place() {
        let out = render(
            "## template: jinja\n#cloud-config\n{% if v1.platform == 'nocloud' %}\nhostname: {{ v1.local_hostname }}\n{% endif %}\n",
            &data(),
        )
        .unwrap();
        assert_eq!(out, "\n#cloud-config\nhostname: web1\n");
    }

    #[test]
    fn an_undefined_name_is_an_error_with_its_line() {
        let e = render(
            "## template: jinja\n#cloud-config\nusers:\n  - name: {{ ds.meta_data.admin_name }}\n",
            &data(),
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e:?}");
        assert!(
            e.message.contains("ds.meta_data.admin_name") && e.message.contains("v1.instance_id"),
            "{e:?}"
        );
    }

    #[test]
    fn only_the_header_line_is_dropped() {
        assert!(is_header("## template: jinja") && is_header("##Template:  Jinja "));
        assert!(!is_header("#cloud-config") && !is_header("## template: jinja2"));
        let e = render("#cloud-config\nusers: []\n", &data()).unwrap_err();
        assert!(e.message.contains("first line is not"), "{e:?}");
    }

    #[test]
    fn the_sandbox_holds() {
        for (template, says) in [
            ("{% include '/etc/shadow' %}", "may not include"),
            ("{% import 'x' as y %}", "may not include"),
            (
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                "too much work",
            ),
            ("{{ x +", "jinja template"),
            (
                "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}",
                "more than",
            ),
        ] {
            let e = render(&format!("## template: jinja\n{template}\n"), &data()).unwrap_err();
            assert!(e.message.contains(says), "{template}: {e:?}");
        }
    }
}
