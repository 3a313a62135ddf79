//! Named operators: a users file of `NAME:<argon2id hash>` lines (`mcf-ledger user add` writes
//! it), so every web action is recorded as the operator who did it. The guide's single
//! WEB_USERNAME / WEB_PASSWORD still works beside it.
//!
//! Basic auth sends the password with every request and argon2id is slow on purpose, so a
//! password that verified is remembered for a few minutes as a keyed hash (never the password
//! itself); the file is read again when it changes, so a new operator can log in at once.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How long a verified password is taken without running argon2 again.
const REMEMBER_FOR: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{path}: cannot read the users file: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} line {line}: {reason} (each line is NAME:<argon2id hash>, as `mcf-ledger user add` writes it)")]
    Invalid { path: String, line: usize, reason: String },
    #[error("the operator name {0:?} is not allowed: use 1 to 32 letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the two passwords differ")]
    Mismatch,
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("{path}: cannot write the users file: {reason}")]
    Unwritable { path: String, reason: String },
}

/// Operator names are recorded as `operator:NAME`: short, and without anything a log or a
/// terminal could misread.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The users file's entries, parsed and checked.
fn parse(path: &Path, text: &str) -> Result<HashMap<String, String>, UsersError> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let invalid = |reason: &str| UsersError::Invalid {
            path: path.display().to_string(),
            line: n + 1,
            reason: reason.to_owned(),
        };
        let (name, hash) = line.split_once(':').ok_or_else(|| invalid("no ':' between the name and the hash"))?;
        if !valid_name(name) {
            return Err(invalid("the name may only have letters, digits, '.', '_' and '-' (at most 32)"));
        }
        let parsed = PasswordHash::new(hash).map_err(|_| invalid("the hash is not an argon2 hash"))?;
        if parsed.algorithm.as_str() != "argon2id" {
            return Err(invalid("the hash is not argon2id"));
        }
        if users.insert(name.to_owned(), hash.to_owned()).is_some() {
            return Err(invalid("the name appears twice"));
        }
    }
    Ok(users)
}

/// The argon2id hash of `password`, as the users file keeps it.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    if password.is_empty() {
        return Err(UsersError::EmptyPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Adds `name` (or replaces its password) in the users file at `path`, created if missing,
/// readable by its owner only.
pub fn add_user(path: &Path, name: &str, password: &str) -> Result<bool, UsersError> {
    if !valid_name(name) {
        return Err(UsersError::BadName(name.to_owned()));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(UsersError::Unreadable { path: path.display().to_string(), reason: e.to_string() }),
    };
    parse(path, &text)?;
    let hash = hash_password(password)?;
    let mut replaced = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| match line.trim().split_once(':') {
            Some((existing, _)) if existing == name => {
                replaced = true;
                format!("{name}:{hash}")
            }
            _ => line.to_owned(),
        })
        .collect();
    if !replaced {
        lines.push(format!("{name}:{hash}"));
    }
    let unwritable =
        |e: std::io::Error| UsersError::Unwritable { path: path.display().to_string(), reason: e.to_string() };
    let temporary = path.with_extension("tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(unwritable)?;
        file.write_all((lines.join("\n") + "\n").as_bytes()).map_err(unwritable)?;
        file.sync_all().map_err(unwritable)?;
    }
    std::fs::rename(&temporary, path).map_err(unwritable)?;
    Ok(replaced)
}

/// The users file as the web admin reads it.
pub struct Users {
    path: PathBuf,
    state: Mutex<Loaded>,
    /// Keys the remembered verifications; new per process.
    key: [u8; 32],
}

struct Loaded {
    modified: Option<SystemTime>,
    hashes: HashMap<String, String>,
    /// name -> (keyed hash of the password that verified, when)
    verified: HashMap<String, ([u8; 32], Instant)>,
}

impl Users {
    /// Reads the file; a file that cannot be read or parsed keeps the admin from starting.
    pub fn load(path: &Path) -> Result<Self, UsersError> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| UsersError::Hash(e.to_string()))?;
        let users = Self {
            path: path.to_owned(),
            state: Mutex::new(Loaded { modified: None, hashes: HashMap::new(), verified: HashMap::new() }),
            key,
        };
        users.reload_if_changed()?;
        Ok(users)
    }

    pub fn count(&self) -> usize {
        self.state.lock().map_or(0, |s| s.hashes.len())
    }

    fn reload_if_changed(&self) -> Result<(), UsersError> {
        let unreadable =
            |e: std::io::Error| UsersError::Unreadable { path: self.path.display().to_string(), reason: e.to_string() };
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).map_err(unreadable)?;
        let mut state = self.state.lock().map_err(|_| UsersError::Hash("poisoned".into()))?;
        if state.modified == Some(modified) {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.path).map_err(unreadable)?;
        state.hashes = parse(&self.path, &text)?;
        state.verified.clear();
        state.modified = Some(modified);
        Ok(())
    }

    fn keyed(&self, name: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// Whether `password` is `name`'s. A file that became unreadable lets nobody in by it (and
    /// says so in the log); the next request reads it again.
    pub fn verify(&self, name: &str, password: &str) -> bool {
        if let Err(error) = self.reload_if_changed() {
            tracing::error!(%error, "the users file cannot be used; its operators cannot log in");
            return false;
        }
        let keyed = self.keyed(name, password);
        let hash = {
            let Ok(state) = self.state.lock() else { return false };
            if let Some((remembered, at)) = state.verified.get(name) {
                if at.elapsed() < REMEMBER_FOR && subtle::ConstantTimeEq::ct_eq(&remembered[..], &keyed[..]).into() {
                    return true;
                }
            }
            match state.hashes.get(name) {
                Some(hash) => hash.clone(),
                None => return false,
            }
        };
        let Ok(parsed) = PasswordHash::new(&hash) else { return false };
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        if ok {
            if let Ok(mut state) = self.state.lock() {
                state.verified.insert(name.to_owned(), (keyed, Instant::now()));
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_user_verifies_another_password_does_not_and_replacing_keeps_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        assert!(!add_user(&path, "sato", "sakura-2026").unwrap());
        assert!(!add_user(&path, "suzuki", "ume").unwrap());
        let users = Users::load(&path).unwrap();
        assert!(users.verify("sato", "sakura-2026"));
        assert!(users.verify("sato", "sakura-2026"), "remembered");
        assert!(!users.verify("sato", "wrong"));
        assert!(!users.verify("nobody", "sakura-2026"));
        assert!(add_user(&path, "sato", "momiji").unwrap(), "replaced");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with("sato:")).count(), 1);
        assert!(text.contains("$argon2id$"));
        assert!(users.verify("sato", "momiji") && !users.verify("sato", "sakura-2026"), "the file is read again");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_bad_file_or_name_is_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# operators\nsato:not-a-hash\n").unwrap();
        let error = Users::load(&path).err().unwrap().to_string();
        assert!(error.contains("line 2") && error.contains("argon2"), "{error}");
        assert!(matches!(add_user(&path, "sato san", "x"), Err(UsersError::BadName(_))));
        assert!(!valid_name("operator\u{1b}[31m"));
    }
}
