//! `batten.kernel`: the kernel settings batten hardens (sysctl, the
//! uncommon network protocols, setuid core dumps), on by default.

use super::checker::Checker;
use super::values::{boolean, each_entry};
use crate::input::model::Kernel;
use crate::input::yaml::{Node, Value};

const KERNEL_KEYS: &[&str] = &["enabled"];

const OFF: &str = "the kernel settings are off: ICMP redirects, source routing, kernel pointers and setuid core dumps stay as the image has them";

/// `batten.kernel`: `false`, `true`, or `{enabled: ...}`.
pub(super) fn kernel(c: &mut Checker, node: &Node, path: &str) -> Kernel {
    let mut k = Kernel::default();
    let (value, at) = if matches!(node.value, Value::Map(_)) {
        let mut found = None;
        each_entry(c, node, path, KERNEL_KEYS, |c, _, v, p| {
            found = Some((boolean(c, v, &p), v.pos, p));
        });
        match found {
            Some((v, pos, p)) => (v, Some((pos, p))),
            None => (None, None),
        }
    } else {
        (boolean(c, node, path), Some((node.pos, path.to_string())))
    };
    if let (Some(on), Some((pos, p))) = (value, at) {
        k.enabled = on;
        if !on {
            c.warn(pos, &p, OFF);
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;

    #[test]
    fn on_by_default_off_with_a_warning() {
        let (ud, e, _) = run("ssh_pwauth: no\n");
        assert!(e.is_empty());
        assert!(ud.unwrap().batten.kernel.enabled);
        for text in [
            "batten:\n  kernel: {enabled: false}\n",
            "batten:\n  kernel: no\n",
        ] {
            let (ud, e, w) = run(text);
            assert!(e.is_empty(), "{e:?}");
            assert!(!ud.unwrap().batten.kernel.enabled);
            assert!(
                w.iter().any(|w| w.contains("the kernel settings are off")),
                "{w:?}"
            );
        }
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors() {
        for (text, want) in [
            (
                "batten:\n  kernel: {enabled: maybe}\n",
                "ud.yaml:2:21: batten.kernel.enabled: expected true or false, found \"maybe\"",
            ),
            (
                "batten:\n  kernel: {enable: true}\n",
                "batten.kernel.enable: unknown key \"enable\"; did you mean \"enabled\"?",
            ),
            (
                "batten:\n  kernel: {sysctl: {}}\n",
                "batten.kernel.sysctl: unknown key",
            ),
            (
                "batten:\n  kernel: [1]\n",
                "batten.kernel: expected true or false",
            ),
        ] {
            let (ud, e, _) = run(text);
            assert!(ud.is_none(), "{text}");
            assert!(e.iter().any(|x| x.contains(want)), "{text}: {e:?}");
        }
    }
}
