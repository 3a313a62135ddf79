//! SMTP (RFC 5321) with the extensions it announces: 8BITMIME, SIZE (RFC 1870) and, when
//! configured, AUTH PLAIN (RFC 4954). Commands out of order get 503, unknown ones 500, bad
//! arguments 501. A message to a local account is delivered to its INBOX with the Return-Path
//! and Received lines an MTA adds; one to anyone else is kept as relayed.

use super::{read_line, Relayed, Shared};
use base64::Engine;
use chrono::Utc;
use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets; a text line 1,000.
const COMMAND_LIMIT: usize = 512;
const TEXT_LIMIT: usize = 1000;

pub(super) async fn serve(socket: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let peer = socket.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|_| "unknown".into());
    let (read, write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut out = BufWriter::new(write);
    let host = shared.config.hostname.clone();
    let mut session = Session { shared, peer, helo: None, authenticated: None, from: None, to: vec![] };
    reply(&mut out, &format!("220 {host} ESMTP mcf-ledger sandbox")).await?;
    loop {
        let line = match read_line(&mut reader, COMMAND_LIMIT).await {
            Ok(Some(line)) => String::from_utf8_lossy(&line).into_owned(),
            Ok(None) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                reply(&mut out, "500 5.5.6 Line too long").await?;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, rest)) => (verb.to_ascii_uppercase(), rest.trim().to_owned()),
            None => (line.trim().to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" | "HELO" if argument.is_empty() => {
                reply(&mut out, &format!("501 5.5.4 Syntax: {verb} hostname")).await?
            }
            "EHLO" => {
                session.reset();
                session.helo = Some(argument.clone());
                let mut lines = vec![format!("{host} greets {argument}"), "8BITMIME".into()];
                lines.push(format!("SIZE {}", session.shared.config.max_message_bytes));
                if session.shared.config.smtp_requires_auth {
                    lines.push("AUTH PLAIN".into());
                }
                let last = lines.len() - 1;
                let text: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(n, l)| format!("250{}{l}", if n == last { ' ' } else { '-' }))
                    .collect();
                reply(&mut out, &text.join("\r\n")).await?;
            }
            "HELO" => {
                session.reset();
                session.helo = Some(argument.clone());
                reply(&mut out, &format!("250 {host}")).await?;
            }
            "AUTH" => {
                let answer = session.auth(&argument, &mut reader, &mut out).await?;
                reply(&mut out, &answer).await?;
            }
            "MAIL" => {
                let answer = session.mail(&argument);
                reply(&mut out, &answer).await?;
            }
            "RCPT" => {
                let answer = session.rcpt(&argument);
                reply(&mut out, &answer).await?;
            }
            "DATA" if !argument.is_empty() => reply(&mut out, "501 5.5.4 Syntax: DATA").await?,
            "DATA" if session.to.is_empty() => reply(&mut out, "503 5.5.1 Error: need RCPT command").await?,
            "DATA" => {
                reply(&mut out, "354 End data with <CR><LF>.<CR><LF>").await?;
                let answer = session.data(&mut reader).await?;
                reply(&mut out, &answer).await?;
            }
            "RSET" => {
                session.reset();
                reply(&mut out, "250 2.0.0 Ok").await?;
            }
            "NOOP" => reply(&mut out, "250 2.0.0 Ok").await?,
            "VRFY" => reply(&mut out, "252 2.0.0 Cannot VRFY user, but will accept message").await?,
            "QUIT" => {
                reply(&mut out, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut out, "500 5.5.2 Error: command not recognized").await?,
        }
    }
}

async fn reply<W: tokio::io::AsyncWrite + Unpin>(out: &mut W, text: &str) -> io::Result<()> {
    out.write_all(text.as_bytes()).await?;
    out.write_all(b"\r\n").await?;
    out.flush().await
}

struct Session {
    shared: Arc<Shared>,
    peer: String,
    helo: Option<String>,
    authenticated: Option<String>,
    from: Option<String>,
    to: Vec<String>,
}

impl Session {
    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
    }

    /// `AUTH PLAIN [initial-response]` (RFC 4616: authzid NUL authcid NUL password).
    async fn auth<R, W>(&mut self, argument: &str, reader: &mut R, out: &mut W) -> io::Result<String>
    where
        R: tokio::io::AsyncBufRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        if !self.shared.config.smtp_requires_auth {
            return Ok("503 5.5.1 Error: authentication not enabled".into());
        }
        if self.helo.is_none() {
            return Ok("503 5.5.1 Error: send EHLO first".into());
        }
        if self.authenticated.is_some() {
            return Ok("503 5.5.1 Error: already authenticated".into());
        }
        let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Ok("504 5.5.4 Unrecognized authentication type".into());
        }
        let response = if initial.is_empty() {
            reply(out, "334 ").await?;
            match read_line(reader, TEXT_LIMIT).await? {
                Some(line) => String::from_utf8_lossy(&line).into_owned(),
                None => return Ok("501 5.5.2 Error: no response".into()),
            }
        } else {
            initial.to_owned()
        };
        if response == "*" {
            return Ok("501 5.7.0 Authentication aborted".into());
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(response.trim()) else {
            return Ok("501 5.5.2 Error: invalid base64 data".into());
        };
        let fields: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
        let [_, user, password] = fields.as_slice() else {
            return Ok("501 5.5.2 Error: invalid PLAIN response".into());
        };
        let (user, password) = (String::from_utf8_lossy(user), String::from_utf8_lossy(password));
        Ok(match self.shared.authenticate(&user, &password) {
            Some(account) => {
                self.authenticated = Some(account.user);
                "235 2.7.0 Authentication successful".into()
            }
            None => "535 5.7.8 Error: authentication failed".into(),
        })
    }

    fn mail(&mut self, argument: &str) -> String {
        if self.helo.is_none() {
            return "503 5.5.1 Error: send HELO/EHLO first".into();
        }
        if self.shared.config.smtp_requires_auth && self.authenticated.is_none() {
            return "530 5.7.0 Authentication required".into();
        }
        if self.from.is_some() {
            return "503 5.5.1 Error: nested MAIL command".into();
        }
        let Some((address, parameters)) = path_after(argument, "FROM:") else {
            return "501 5.5.4 Syntax: MAIL FROM:<address>".into();
        };
        for parameter in parameters.split_whitespace() {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match name.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<usize>() {
                    Ok(size) if size > self.shared.config.max_message_bytes => {
                        return "552 5.3.4 Message size exceeds fixed limit".into()
                    }
                    Ok(_) => {}
                    Err(_) => return "501 5.5.4 Bad SIZE parameter".into(),
                },
                "BODY" if matches!(value.to_ascii_uppercase().as_str(), "7BIT" | "8BITMIME") => {}
                _ => return format!("555 5.5.4 Unsupported option: {parameter}"),
            }
        }
        self.from = Some(address);
        "250 2.1.0 Ok".into()
    }

    fn rcpt(&mut self, argument: &str) -> String {
        if self.from.is_none() {
            return "503 5.5.1 Error: need MAIL command".into();
        }
        match path_after(argument, "TO:") {
            Some((address, _)) if address.contains('@') => {
                self.to.push(address);
                "250 2.1.5 Ok".into()
            }
            Some(_) => "501 5.1.3 Bad recipient address syntax".into(),
            None => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
        }
    }

    /// Reads the message up to the line with a single dot, undoing dot-stuffing, and delivers it.
    async fn data<R: tokio::io::AsyncBufRead + Unpin>(&mut self, reader: &mut R) -> io::Result<String> {
        let limit = self.shared.config.max_message_bytes;
        let mut message = Vec::new();
        let mut too_big = false;
        loop {
            let line = match read_line(reader, limit).await {
                Ok(Some(line)) => line,
                Ok(None) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection lost in DATA")),
                Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                    too_big = true;
                    continue;
                }
                Err(error) => return Err(error),
            };
            if line == b"." {
                break;
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if message.len() + line.len() + 2 > limit {
                too_big = true;
            }
            if !too_big {
                message.extend_from_slice(line);
                message.extend_from_slice(b"\r\n");
            }
        }
        let from = self.from.take().unwrap_or_default();
        let to = std::mem::take(&mut self.to);
        if too_big {
            return Ok("552 5.3.4 Message size exceeds fixed limit".into());
        }
        let id = format!("{:X}", Utc::now().timestamp_nanos_opt().unwrap_or_default());
        let trace = format!(
            "Return-Path: <{from}>\r\nReceived: from {} ([{}])\r\n\tby {} (mcf-ledger sandbox) with ESMTP id {id};\r\n\t{}\r\n",
            self.helo.as_deref().unwrap_or("unknown"),
            self.peer,
            self.shared.config.hostname,
            Utc::now().to_rfc2822()
        );
        let mut state = self.shared.lock();
        for recipient in to {
            let mut raw = trace.clone().into_bytes();
            raw.extend_from_slice(&message);
            match state.by_address(&recipient) {
                Some(mailbox) => {
                    mailbox.append(raw, BTreeSet::new(), Utc::now());
                }
                None => state.relayed.push(Relayed { from: from.clone(), to: recipient, raw }),
            }
        }
        Ok(format!("250 2.0.0 Ok: queued as {id}"))
    }
}

/// `FROM:<a@b> PARAMS` (or `TO:`): the address between the angle brackets and what follows.
fn path_after(argument: &str, keyword: &str) -> Option<(String, String)> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let close = inner.find('>')?;
    Some((inner[..close].to_owned(), inner[close + 1..].trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::path_after;

    #[test]
    fn paths_are_read_between_angle_brackets() {
        assert_eq!(
            path_after("FROM:<shop@example.jp> SIZE=120", "FROM:"),
            Some(("shop@example.jp".into(), "SIZE=120".into()))
        );
        assert_eq!(path_after("from: <>", "FROM:"), Some((String::new(), String::new())));
        assert_eq!(path_after("TO:buyer@example.jp", "TO:"), None);
        assert_eq!(path_after("FROM:<a@b>", "TO:"), None);
    }
}
