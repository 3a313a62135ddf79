//! Real mail servers for tests, started per test on loopback with a throwaway configuration:
//! dovecot (IMAP, plain and implicit TLS) and aiosmtpd (SMTP, captured to a Maildir).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "shop";
pub const PASSWORD: &str = "imap-secret";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A token no other server on this machine greets with.
fn unique_token() -> String {
    format!("mcf-test-{}-{}", std::process::id(), fastrand::u64(..))
}

/// Whether the server on `port` greets with `token` (and so is ours, not whoever else took the
/// port meanwhile).
fn greets_with(port: u16, token: &str) -> bool {
    use std::io::{BufRead, BufReader};
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.contains(token)
}

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub plain_port: u16,
    pub tls_port: u16,
    child: Child,
}

impl Dovecot {
    /// Dovecot on two free ports. A port can be taken by another process between our choice
    /// and dovecot's bind (a client's ephemeral port, another test's server): dovecot then
    /// exits, and it is started again on other ports. It is ready when it greets with this
    /// run's own token, so another server on the port is never mistaken for it.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let cert = base.join("cert.pem");
        let key = base.join("key.pem");
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl could not make a certificate");
        let mail = base.join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        Command::new("chown").args(["-R", "mail:mail"]).arg(&mail).status().unwrap();
        let passwd = base.join("passwd");
        std::fs::write(&passwd, format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let token = unique_token();
        for _attempt in 0..8 {
            let (plain_port, tls_port) = (free_port(), free_port());
            let config = format!(
                "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {base}/run\nstate_dir = {base}/state\nlog_path = {base}/dovecot.log\n\
                 default_login_user = dovenull\ndefault_internal_user = dovecot\nfirst_valid_uid = 1\n\
                 login_greeting = {token} ready.\n\
                 ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\ndisable_plaintext_auth = no\n\
                 mail_location = maildir:{mail}/%u\n\
                 passdb {{\n  driver = passwd-file\n  args = {passwd}\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=mail gid=mail home={mail}/%u\n}}\n\
                 service imap-login {{\n  inet_listener imap {{\n    port = {plain_port}\n  }}\n  inet_listener imaps {{\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n",
                base = base.display(),
                cert = cert.display(),
                key = key.display(),
                mail = mail.display(),
                passwd = passwd.display(),
            );
            let conf = base.join("dovecot.conf");
            std::fs::write(&conf, config).unwrap();
            let mut child = Command::new("dovecot")
                .arg("-F")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dovecot (Debian's dovecot-imapd) must be installed: scripts/test installs it");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if greets_with(plain_port, &token) {
                    return Self { dir, plain_port, tls_port, child };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // a port was taken: again, on other ports
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        let log = std::fs::read_to_string(base.join("dovecot.log")).unwrap_or_default();
        panic!("dovecot did not start on any free ports; its log:\n{log}");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join(USER)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct SmtpSink {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl SmtpSink {
    pub fn start() -> Self {
        Self::spawn(false)
    }

    /// With STARTTLS required, on a throwaway self-signed certificate.
    pub fn start_tls() -> Self {
        Self::spawn(true)
    }

    /// aiosmtpd on a port the kernel chooses when it binds (port 0), read back from its first
    /// line of output: no other process can take the port in between.
    fn spawn(tls: bool) -> Self {
        use std::io::{BufRead, BufReader};
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        if tls {
            let made = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=localhost",
                    "-keyout",
                ])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(made.success());
        }
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(SMTP_SINK)
            .arg(dir.path().join("maildir"))
            .arg(if tls { cert.to_string_lossy().into_owned() } else { String::new() })
            .arg(if tls { key.to_string_lossy().into_owned() } else { String::new() })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd must be installed: scripts/test installs it");
        let mut first = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let port: u16 = first.trim().parse().unwrap_or_else(|_| panic!("aiosmtpd did not say its port: {first:?}"));
        Self { dir, port, child }
    }

    /// Every message received so far, raw.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("maildir").join("new");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&new).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// aiosmtpd with the Maildir handler, bound by the kernel's choice of port, which it prints.
/// With a certificate, STARTTLS is required (as `aiosmtpd --tlscert` does).
const SMTP_SINK: &str = r#"
import asyncio, ssl, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

async def main():
    maildir, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
    handler = Mailbox(maildir)
    context = None
    if cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, tls_context=context, require_starttls=bool(cert)), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

pub fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}
