//! Certificates from an ACME CA for proxy sites that name a domain
//! (`tls: {acme: ...}`), obtained once the network is up and renewed
//! before they run out, without ever delaying sshd.
//!
//! The ACME client is the ecosystem's: certbot in its webroot mode, which
//! Debian, Fedora, EPEL and Alpine package and keep up to date, so batten
//! carries no ACME protocol code, no HTTP client with TLS and no account
//! key handling of its own. certbot writes the challenge files into
//! [`super::tls::ACME_WEBROOT`], which the site's port-80 server answers
//! from (to anyone: the CA validates from its own addresses); batten then
//! copies the issued chain and key over the site's own pair in
//! `/etc/ssl/batten`, so nginx's configuration never changes and a reload
//! switches the certificate with no restart of the panel. Until the first
//! success the site keeps the self-signed certificate it had from the
//! first second.
//!
//! `batten acme` does one round for every ACME site: certbot `certonly
//! --keep-until-expiring` (it renews within 30 days of expiry and does
//! nothing before), the pair copied when certbot's differs, nginx reloaded,
//! the outcome recorded in the state (`batten status`, verify) and printed
//! (the unit's output goes to the journal and the console).
//! `batten-acme.service` runs it after the network is up at boot, and
//! `batten-acme.timer` twice a day.

pub mod certbot;
pub mod obtain;
pub mod units;
