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

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub plain_port: u16,
    pub tls_port: u16,
    child: Child,
}

impl Dovecot {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let (plain_port, tls_port) = (free_port(), free_port());
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
        let config = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {base}/run\nstate_dir = {base}/state\nlog_path = {base}/dovecot.log\n\
             default_login_user = dovenull\ndefault_internal_user = dovecot\nfirst_valid_uid = 1\n\
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
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dovecot (Debian's dovecot-imapd) must be installed: scripts/test installs it");
        wait_for_port(plain_port);
        wait_for_port(tls_port);
        Self { dir, plain_port, tls_port, child }
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

    fn spawn(tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = Command::new("/usr/bin/python3");
        if tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
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
            command.arg("-m").arg("aiosmtpd").arg("--tlscert").arg(&cert).arg("--tlskey").arg(&key);
        } else {
            command.args(["-m", "aiosmtpd"]);
        }
        let child = command
            .args(["-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd must be installed: scripts/test installs it");
        wait_for_port(port);
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

pub fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}
