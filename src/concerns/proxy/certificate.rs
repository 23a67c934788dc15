//! A proxy site's own certificate, made in-process at first boot (`tls:
//! auto`), and what an owner checks a certificate by.
//!
//! The key is ECDSA P-256, which every browser and curl accept, made from
//! the kernel's random numbers; the certificate is self-signed, valid for
//! the site's names and the machine's, for five years (nobody but its
//! owner trusts it: what is checked is its fingerprint, as with an SSH host
//! key, and a certificate that changed would only teach owners to click
//! through warnings). Everything here is pure Rust (RustCrypto's `p256` and
//! `x509-cert`): rcgen's key generation needs ring or aws-lc-rs, whose C
//! and assembly the ARM builds, linked with rust-lld alone, cannot compile.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::der::asn1::Ia5String;
use x509_cert::der::oid::db::rfc5280::ID_KP_SERVER_AUTH;
use x509_cert::der::{Decode, DecodePem, Encode, EncodePem};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use x509_cert::time::Validity;

/// How long a made certificate is valid: five years.
pub const VALID_FOR: Duration = Duration::from_secs(5 * 365 * 24 * 3600 + 24 * 3600);

/// A key and its self-signed certificate, as nginx reads them.
pub struct Made {
    /// The private key, PKCS#8 PEM: a secret, written 0600 root.
    pub key_pem: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
}

impl std::fmt::Debug for Made {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Made")
            .field("key_pem", &"<hidden>")
            .field("certificate_pem", &self.certificate_pem)
            .finish()
    }
}

/// What an owner checks a certificate by, and when it runs out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// SHA-256 of the certificate, as browsers and `openssl x509
    /// -fingerprint -sha256` show it: `AB:CD:...`.
    pub fingerprint: String,
    /// SHA-256 of its public key, as curl pins it: `sha256//BASE64=`.
    pub pin: String,
    /// The names it is valid for (its subjectAltName DNS names).
    pub names: Vec<String>,
    /// When it expires, in seconds since the epoch.
    pub not_after: u64,
    /// Whether it is self-signed (issuer and subject the same).
    pub self_signed: bool,
}

/// The profile of a made certificate: a TLS server's leaf, its own issuer.
struct SelfSignedServer {
    subject: Name,
    names: Vec<String>,
}

impl BuilderProfile for SelfSignedServer {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut extensions = Vec::new();
        let names = self
            .names
            .iter()
            .map(|n| Ia5String::new(n.as_bytes()).map(GeneralName::DnsName))
            .collect::<Result<Vec<_>, _>>()?;
        extensions.push(SubjectAltName(names).to_extension(tbs.subject(), &extensions)?);
        extensions.push(
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }
            .to_extension(tbs.subject(), &extensions)?,
        );
        extensions.push(
            KeyUsage(KeyUsages::DigitalSignature.into())
                .to_extension(tbs.subject(), &extensions)?,
        );
        extensions.push(
            ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]).to_extension(tbs.subject(), &extensions)?,
        );
        Ok(extensions)
    }
}

/// Make a key and a self-signed certificate for `names` (DNS names that
/// passed the grammar; the first is the subject's common name). `Err`
/// names what failed: the kernel's random numbers or the encoding.
pub fn self_signed(names: &[String]) -> Result<Made, String> {
    let first = names
        .first()
        .ok_or("a certificate needs at least one name")?;
    let mut rng = rand::rngs::SysRng;
    let key = {
        use p256::elliptic_curve::Generate;
        SigningKey::try_generate_from_rng(&mut rng)
            .map_err(|e| format!("the kernel gave no random numbers for the key: {e}"))?
    };
    let serial = {
        use rand::TryRng;
        let mut bytes = [0u8; 16];
        rng.try_fill_bytes(&mut bytes)
            .map_err(|e| format!("the kernel gave no random numbers for the serial: {e}"))?;
        bytes[0] &= 0x7f;
        bytes[0] |= 0x01;
        SerialNumber::new(&bytes).map_err(|e| e.to_string())?
    };
    let subject = Name::from_str(&format!("CN={first}")).map_err(|e| e.to_string())?;
    let profile = SelfSignedServer {
        subject,
        names: names.to_vec(),
    };
    let validity = Validity::from_now(VALID_FOR).map_err(|e| e.to_string())?;
    let spki = SubjectPublicKeyInfo::from_key(key.verifying_key()).map_err(|e| e.to_string())?;
    let builder =
        CertificateBuilder::new(profile, serial, validity, spki).map_err(|e| e.to_string())?;
    let certificate = builder
        .build::<_, DerSignature>(&key)
        .map_err(|e| format!("signing the certificate: {e}"))?;
    let certificate_pem = certificate
        .to_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?
        .to_string();
    Ok(Made {
        key_pem,
        certificate_pem,
    })
}

/// Describe the first certificate of a PEM file (a chain's leaf).
pub fn describe(pem: &str) -> Result<Described, String> {
    let start = pem
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or("no PEM certificate in it")?;
    let end = pem[start..]
        .find("-----END CERTIFICATE-----")
        .map(|i| start + i + "-----END CERTIFICATE-----".len())
        .ok_or("its PEM certificate is cut short")?;
    let certificate =
        Certificate::from_pem(&pem[start..end]).map_err(|e| format!("not a certificate: {e}"))?;
    describe_certificate(&certificate)
}

/// Describe a DER certificate (what a TLS server sends).
pub fn describe_der(der: &[u8]) -> Result<Described, String> {
    let certificate = Certificate::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
    describe_certificate(&certificate)
}

fn describe_certificate(certificate: &Certificate) -> Result<Described, String> {
    let der = certificate.to_der().map_err(|e| e.to_string())?;
    let fingerprint = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let tbs = certificate.tbs_certificate();
    let spki = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| e.to_string())?;
    let pin = format!(
        "sha256//{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&spki))
    );
    let mut names = Vec::new();
    if let Ok(Some(san)) = tbs.get_extension::<SubjectAltName>() {
        for name in san.1.0 {
            if let GeneralName::DnsName(n) = name {
                names.push(n.to_string());
            }
        }
    }
    Ok(Described {
        fingerprint,
        pin,
        names,
        not_after: tbs.validity().not_after.to_unix_duration().as_secs(),
        self_signed: tbs.issuer() == tbs.subject(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_certificate_names_the_site_and_describes_itself() {
        let names = vec!["panel.example.org".to_string(), "host1".to_string()];
        let made = self_signed(&names).unwrap();
        assert!(made.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(!format!("{made:?}").contains("PRIVATE"));
        let d = describe(&made.certificate_pem).unwrap();
        assert_eq!(d.names, names);
        assert!(d.self_signed);
        assert_eq!(d.fingerprint.len(), 32 * 3 - 1);
        assert!(d.pin.starts_with("sha256//") && d.pin.ends_with('='));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(d.not_after > now + 4 * 365 * 24 * 3600, "{d:?}");
        let other = self_signed(&names).unwrap();
        assert_ne!(
            describe(&other.certificate_pem).unwrap().fingerprint,
            d.fingerprint
        );
    }

    #[test]
    fn openssl_reads_the_certificate_and_agrees_on_the_fingerprint() {
        let made = self_signed(&["panel.example.org".to_string()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pem");
        std::fs::write(&path, &made.certificate_pem).unwrap();
        let Ok(out) = std::process::Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-fingerprint",
                "-sha256",
                "-ext",
                "subjectAltName,extendedKeyUsage",
                "-in",
            ])
            .arg(&path)
            .output()
        else {
            assert!(std::env::var_os("CI").is_none(), "openssl is needed in CI");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let d = describe(&made.certificate_pem).unwrap();
        assert!(text.contains(&d.fingerprint), "{text}");
        assert!(text.contains("DNS:panel.example.org"), "{text}");
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        let key = dir.path().join("k.pem");
        std::fs::write(&key, &made.key_pem).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkey", "-noout", "-check", "-in"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn garbage_is_named_not_described() {
        assert!(
            describe("hello")
                .unwrap_err()
                .contains("no PEM certificate")
        );
        assert!(
            describe("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
    }
}
