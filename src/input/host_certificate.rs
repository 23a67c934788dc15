//! Host certificates from `ssh_keys` (`<type>_certificate`), read the way
//! sshd reads them (OpenSSH's PROTOCOL.certkeys) before one reaches a
//! `-cert.pub` file and a `HostCertificate` line.
//!
//! The ssh-key crate refuses certificates valid "forever", which is what
//! `ssh-keygen -s` makes by default, so the few fields that matter are read
//! here: the certificate's type name, the key it certifies, whether it is a
//! host or a user certificate, and its signature by the authority it names
//! (sshd skips a certificate whose signature fails). The rest is walked
//! only to prove the blob is whole; validity times and principals are the
//! client's business, as they are sshd's.

use base64::Engine;

/// The certificate type sshd accepts as a host's.
const HOST: u32 = 2;

/// Check one certificate line for the host key `key`: an OpenSSH
/// certificate of the matching type, for this very key, of host type,
/// whole. The error says what is wrong and what to do.
pub fn check(line: &str, key: &ssh_key::PublicKey) -> Result<(), String> {
    let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
    let (Some(name), Some(data)) = (words.next(), words.next()) else {
        return Err(not_one("it is not a type followed by base64 data"));
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| not_one(&format!("its data is not base64: {e}")))?;
    let key_blob = key.to_bytes().map_err(|e| e.to_string())?;
    let mut plain = Wire(&key_blob);
    let algorithm = plain.string().ok_or("the host key cannot be encoded")?;
    let key_fields = plain.0;
    let wanted = format!(
        "{}-cert-v01@openssh.com",
        String::from_utf8_lossy(algorithm)
    );
    if name != wanted {
        return Err(format!(
            "this is a {name} line; the key beside it needs a {wanted} certificate"
        ));
    }
    let mut cert = Wire(&blob);
    if cert.string() != Some(wanted.as_bytes()) {
        return Err(not_one("its data does not name the type its line names"));
    }
    cert.string().ok_or_else(|| not_one("it ends early"))?; // nonce
    if !cert.0.starts_with(key_fields) {
        return Err("this certificate is for another key than the private key beside it".into());
    }
    cert.0 = &cert.0[key_fields.len()..];
    cert.take(8).ok_or_else(|| not_one("it ends early"))?; // serial
    let kind = cert
        .take(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| not_one("it ends early"))?;
    if kind != HOST {
        return Err(
            "this is a user certificate; sign the host key with `ssh-keygen -s CA -h` to make a host certificate"
                .into(),
        );
    }
    // key id, principals, validity (two times), critical options,
    // extensions, reserved, then the authority's key, the signature over
    // everything before it, and nothing after.
    let fields = cert.string().is_some()
        && cert.string().is_some()
        && cert.take(16).is_some()
        && (0..3).all(|_| cert.string().is_some());
    let authority = cert.string().filter(|_| fields);
    let signed = blob.len() - cert.0.len();
    let signature = cert.string();
    let (Some(authority), Some(signature), true) = (authority, signature, cert.0.is_empty()) else {
        return Err(not_one("it is cut short or has bytes after its signature"));
    };
    // sshd checks the signature when it loads the file and skips a
    // certificate that fails, serving the bare key: say so now instead.
    let authority = ssh_key::PublicKey::from_bytes(authority)
        .map_err(|e| not_one(&format!("its authority's key cannot be read: {e}")))?;
    let signature = ssh_key::Signature::try_from(signature)
        .map_err(|e| not_one(&format!("its signature cannot be read: {e}")))?;
    signature::Verifier::verify(authority.key_data(), &blob[..signed], &signature).map_err(|_| {
        "the certificate's signature does not verify with the authority it names (sshd would not load it); sign the key again with `ssh-keygen -s CA -h`".to_string()
    })?;
    Ok(())
}

fn not_one(why: &str) -> String {
    format!(
        "not an OpenSSH certificate ({why}); give the whole line of the -cert.pub file `ssh-keygen -s CA -h` wrote"
    )
}

/// SSH wire format (RFC 4251): the bytes not read yet.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// A `string`: a 32-bit length, then that many bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ssh-keygen -s ca -I test -h -n host.example.org` on a throwaway
    /// ed25519 key, valid forever (ssh-keygen's default), and the key.
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyBx6OdZNri0XX/pCGXM+R+S/8FOnknnjt7vjzpmBHm root@host";
    const CERT: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIHUBagIIrfp0sHOtRiX2jF+xdsRLyxX3w1BGnGwN3d8zAAAAIKyBx6OdZNri0XX/pCGXM+R+S/8FOnknnjt7vjzpmBHmAAAAAAAAAAAAAAACAAAABHRlc3QAAAAUAAAAEGhvc3QuZXhhbXBsZS5vcmcAAAAAAAAAAP//////////AAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACCDWg/KF8GMYiSf7FZqrJwU0OZAIVBxo7Tm4Wlo0oo54wAAAFMAAAALc3NoLWVkMjU1MTkAAABABjcqeiz0ICsHXLZEXMfkRUKisjaVw7LiFipm2MZHEK9OwQvlNfCObKFG+znXFFn7uUzQaH4Rrvsk72GpqTYJCQ== root@host";

    fn key() -> ssh_key::PublicKey {
        ssh_key::PublicKey::from_openssh(KEY).unwrap()
    }

    #[test]
    fn a_forever_host_certificate_from_ssh_keygen_is_taken() {
        assert_eq!(check(CERT, &key()), Ok(()));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let other = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGBfY5Y7Dp1Dn4a4y6iJbBvYxVKJWB3H0cQ2m9bq6Tq3 a@b",
        )
        .unwrap();
        let err = |line: &str, key: &ssh_key::PublicKey| check(line, key).unwrap_err();
        assert!(err(CERT, &other).contains("for another key"));
        assert!(err(KEY, &key()).contains("needs a ssh-ed25519-cert-v01@openssh.com"));
        assert!(err("ssh-ed25519-cert-v01@openssh.com", &key()).contains("type followed by"));
        assert!(err("ssh-ed25519-cert-v01@openssh.com !!", &key()).contains("not base64"));
        // Cut short: the last 8 base64 characters (6 bytes) gone.
        let data = CERT.split(' ').nth(1).unwrap();
        let short = format!(
            "ssh-ed25519-cert-v01@openssh.com {}",
            &data[..data.len() - 8]
        );
        assert!(
            err(&short, &key()).contains("cut short"),
            "{}",
            err(&short, &key())
        );
        // The same certificate with its type field set to user (1).
        let mut blob = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let at = 4 + 32 + 4 + 32 + 4 + 32 + 8;
        assert_eq!(blob[at..at + 4], [0, 0, 0, 2]);
        blob[at + 3] = 1;
        let user = format!(
            "ssh-ed25519-cert-v01@openssh.com {}",
            base64::engine::general_purpose::STANDARD.encode(&blob)
        );
        assert!(err(&user, &key()).contains("user certificate"));
        // One byte of the signature changed.
        let mut forged = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let forged = format!(
            "ssh-ed25519-cert-v01@openssh.com {}",
            base64::engine::general_purpose::STANDARD.encode(&forged)
        );
        assert!(err(&forged, &key()).contains("does not verify"));
    }
}
