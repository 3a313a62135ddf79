//! IMAP4rev1 (RFC 3501), the part a client reading a shop's mailbox uses: CAPABILITY, NOOP,
//! LOGOUT, LOGIN, SELECT, EXAMINE, LIST, APPEND, FETCH, UID FETCH, CLOSE and IDLE (RFC 2177:
//! `* n EXISTS` as mail arrives, until DONE; offered unless configured off). A synchronizing
//! literal (`{n}`) is answered with a continuation before its bytes are read. Anything else
//! gets the tagged BAD a server gives a command it does not know.

use super::{read_line, Mailbox, Shared, StoredMessage};
use crate::faults::Fault;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

/// Longest command line accepted (the RFC sets none; servers commonly take 64 KiB).
const LINE_LIMIT: usize = 64 * 1024;
/// Largest literal accepted: an APPENDed message.
const LITERAL_LIMIT: usize = 50 * 1024 * 1024;
const INBOX: &str = "INBOX";

pub(super) async fn serve(socket: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let (read, write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let mut out = BufWriter::new(write);
    match shared.faults.take("imap.greeting") {
        Some(Fault::Status(_)) => {
            out.write_all(b"* BYE [UNAVAILABLE] Server is not available, try again later.\r\n").await?;
            return out.flush().await;
        }
        Some(Fault::Malformed) => {
            out.write_all(b"\x16\x03\x01 not IMAP\r\n").await?;
            return out.flush().await;
        }
        Some(Fault::Slow(delay) | Fault::ApplyThenHang(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    out.write_all(
        format!("* OK [CAPABILITY {}] {} IMAP4rev1 sandbox ready.\r\n", capabilities(&shared), shared.config.hostname)
            .as_bytes(),
    )
    .await?;
    out.flush().await?;
    let mut session = Session { shared, user: None, selected: None };
    loop {
        let parts = match read_command(&mut reader, &mut out).await? {
            Some(Ok(parts)) => parts,
            Some(Err(Refused { tag, reason })) => {
                out.write_all(format!("{} BAD {reason}\r\n", tag.as_deref().unwrap_or("*")).as_bytes()).await?;
                out.flush().await?;
                continue;
            }
            None => return Ok(()),
        };
        let reply = match tokenize(&parts) {
            Ok(tokens) => session.execute(tokens),
            Err(reason) => Reply::tagged_from(&parts, "BAD", &format!("Error in IMAP command: {reason}")),
        };
        if let Some(fault) = reply.fetch.then(|| session.shared.faults.take("imap.fetch")).flatten() {
            return answer_with(fault, &reply, &mut out).await;
        }
        out.write_all(&reply.bytes).await?;
        out.flush().await?;
        if reply.close {
            return Ok(());
        }
        if let Some(tag) = &reply.idle {
            if !session.idle_until_done(tag, &mut reader, &mut out).await? {
                return Ok(());
            }
        }
    }
}

fn capabilities(shared: &Shared) -> &'static str {
    if shared.config.imap_idle {
        "IMAP4rev1 IDLE"
    } else {
        "IMAP4rev1"
    }
}

/// A command refused before it was whole (a literal too big to accept).
struct Refused {
    tag: Option<String>,
    reason: String,
}

enum Part {
    Text(Vec<u8>),
    Literal(Vec<u8>),
}

/// Reads one command, with its literals. None at the end of the stream.
async fn read_command<R, W>(reader: &mut R, out: &mut W) -> io::Result<Option<Result<Vec<Part>, Refused>>>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut parts = Vec::new();
    loop {
        let Some(mut line) = read_line(reader, LINE_LIMIT).await? else {
            return Ok(None);
        };
        let Some(size) = literal_size(&line) else {
            parts.push(Part::Text(line));
            return Ok(Some(Ok(parts)));
        };
        let open = line.iter().rposition(|b| *b == b'{').unwrap_or(line.len());
        line.truncate(open);
        if size > LITERAL_LIMIT {
            let first = parts.first().map_or(&line, |p| match p {
                Part::Text(text) => text,
                Part::Literal(_) => &line,
            });
            let tag = String::from_utf8_lossy(first).split(' ').next().map(str::to_owned);
            return Ok(Some(Err(Refused { tag, reason: format!("Literal of {size} bytes is too large.") })));
        }
        parts.push(Part::Text(line));
        out.write_all(b"+ Ready for literal data\r\n").await?;
        out.flush().await?;
        let mut literal = vec![0; size];
        reader.read_exact(&mut literal).await?;
        parts.push(Part::Literal(literal));
    }
}

/// `{n}` at the end of a line announces n bytes of literal.
fn literal_size(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|b| *b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Atom(String),
    Quoted(String),
    Literal(Vec<u8>),
    List(Vec<Token>),
}

impl Token {
    /// An astring (atom, quoted string or literal) as text.
    fn text(&self) -> Option<String> {
        match self {
            Token::Atom(s) | Token::Quoted(s) => Some(s.clone()),
            Token::Literal(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Token::List(_) => None,
        }
    }
}

/// Splits a command into atoms, quoted strings, literals and parenthesized lists. An atom
/// keeps a bracketed section whole (`BODY.PEEK[HEADER.FIELDS (FROM)]`).
fn tokenize(parts: &[Part]) -> Result<Vec<Token>, String> {
    let mut stack: Vec<Vec<Token>> = vec![vec![]];
    for part in parts {
        let text = match part {
            Part::Literal(bytes) => {
                stack.last_mut().ok_or("unbalanced parentheses")?.push(Token::Literal(bytes.clone()));
                continue;
            }
            Part::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        };
        let mut chars = text.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                ' ' => {
                    chars.next();
                }
                '(' => {
                    chars.next();
                    stack.push(vec![]);
                }
                ')' => {
                    chars.next();
                    let list = stack.pop().filter(|_| !stack.is_empty()).ok_or("unbalanced parentheses")?;
                    stack.last_mut().ok_or("unbalanced parentheses")?.push(Token::List(list));
                }
                '"' => {
                    chars.next();
                    let mut quoted = String::new();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => quoted.push(chars.next().ok_or("unterminated quoted string")?),
                            Some(other) => quoted.push(other),
                            None => return Err("unterminated quoted string".into()),
                        }
                    }
                    stack.last_mut().ok_or("unbalanced parentheses")?.push(Token::Quoted(quoted));
                }
                _ => {
                    let mut atom = String::new();
                    let mut depth = 0;
                    while let Some(&c) = chars.peek() {
                        if depth == 0 && matches!(c, ' ' | '(' | ')') {
                            break;
                        }
                        match c {
                            '[' => depth += 1,
                            ']' => depth -= 1,
                            _ => {}
                        }
                        atom.push(c);
                        chars.next();
                    }
                    stack.last_mut().ok_or("unbalanced parentheses")?.push(Token::Atom(atom));
                }
            }
        }
    }
    match (stack.pop(), stack.is_empty()) {
        (Some(tokens), true) => Ok(tokens),
        _ => Err("unbalanced parentheses".into()),
    }
}

/// A FETCH answered as `fault` says: refused, cut off mid-answer, or never completed.
async fn answer_with<W: tokio::io::AsyncWrite + Unpin>(fault: Fault, reply: &Reply, out: &mut W) -> io::Result<()> {
    let tagged_at =
        reply.bytes[..reply.bytes.len().saturating_sub(2)].iter().rposition(|b| *b == b'\n').map_or(0, |at| at + 1);
    let tag = String::from_utf8_lossy(&reply.bytes[tagged_at..]).split(' ').next().unwrap_or("*").to_owned();
    match fault {
        Fault::Status(_) => {
            out.write_all(
                format!("{tag} NO [UNAVAILABLE] Internal error occurred. Refer to server log.\r\n").as_bytes(),
            )
            .await?;
        }
        Fault::Malformed => {
            // Half of the answer, then the connection is gone.
            out.write_all(&reply.bytes[..reply.bytes.len() / 2]).await?;
            out.flush().await?;
            return Ok(());
        }
        Fault::ApplyThenHang(hang) => {
            out.write_all(&reply.bytes[..tagged_at]).await?;
            out.flush().await?;
            tokio::time::sleep(hang).await;
            return Ok(());
        }
        Fault::Slow(delay) => {
            tokio::time::sleep(delay).await;
            out.write_all(&reply.bytes).await?;
        }
    }
    out.flush().await
}

struct Reply {
    bytes: Vec<u8>,
    close: bool,
    /// The tag of an IDLE begun: the session waits for DONE, telling of new mail meanwhile.
    idle: Option<String>,
    /// The answer to a FETCH (where fetch faults apply).
    fetch: bool,
}

impl Reply {
    fn new() -> Self {
        Self { bytes: Vec::new(), close: false, fetch: false, idle: None }
    }

    fn untagged(mut self, line: &str) -> Self {
        self.bytes.extend_from_slice(b"* ");
        self.bytes.extend_from_slice(line.as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    fn tagged(mut self, tag: &str, status: &str, text: &str) -> Self {
        self.bytes.extend_from_slice(format!("{tag} {status} {text}\r\n").as_bytes());
        self
    }

    /// A tagged reply when the command could not even be split: its first word is the tag.
    fn tagged_from(parts: &[Part], status: &str, text: &str) -> Self {
        let tag = match parts.first() {
            Some(Part::Text(line)) => String::from_utf8_lossy(line).split(' ').next().unwrap_or("*").to_owned(),
            _ => "*".into(),
        };
        Self::new().tagged(&tag, status, text)
    }
}

struct Selected {
    read_only: bool,
    /// EXISTS as last told to the client: NOOP reports what arrived since.
    reported_exists: usize,
}

struct Session {
    shared: Arc<Shared>,
    user: Option<String>,
    selected: Option<Selected>,
}

impl Session {
    fn execute(&mut self, tokens: Vec<Token>) -> Reply {
        let mut tokens = tokens.into_iter();
        let tag = match tokens.next() {
            Some(Token::Atom(tag)) if !tag.is_empty() && !tag.contains(['+', '*', '%', '"', '{']) => tag,
            _ => return Reply::new().untagged("BAD Error in IMAP command received by server: missing tag."),
        };
        let Some(command) = tokens.next().and_then(|t| if let Token::Atom(c) = t { Some(c) } else { None }) else {
            return Reply::new().tagged(&tag, "BAD", "Error in IMAP command received by server: missing command.");
        };
        let command = command.to_ascii_uppercase();
        let args: Vec<Token> = tokens.collect();
        let bad = |text: &str| Reply::new().tagged(&tag, "BAD", &format!("Error in IMAP command {command}: {text}"));
        match (command.as_str(), self.user.is_some(), self.selected.is_some()) {
            ("CAPABILITY", ..) => Reply::new().untagged(&format!("CAPABILITY {}", capabilities(&self.shared))).tagged(
                &tag,
                "OK",
                "Capability completed.",
            ),
            ("IDLE", true, true) if self.shared.config.imap_idle && args.is_empty() => {
                let mut reply = self.new_mail(Reply::new());
                reply.bytes.extend_from_slice(b"+ idling\r\n");
                reply.idle = Some(tag);
                reply
            }
            ("NOOP", ..) => self.new_mail(Reply::new()).tagged(&tag, "OK", "NOOP completed."),
            ("LOGOUT", ..) => {
                let mut reply = Reply::new().untagged("BYE Logging out").tagged(&tag, "OK", "Logout completed.");
                reply.close = true;
                reply
            }
            ("LOGIN", false, _) => match (args.first().and_then(Token::text), args.get(1).and_then(Token::text)) {
                (Some(user), Some(password)) if args.len() == 2 => match self.shared.authenticate(&user, &password) {
                    Some(account) => {
                        self.user = Some(account.user);
                        Reply::new().tagged(
                            &tag,
                            "OK",
                            &format!("[CAPABILITY {}] Logged in", capabilities(&self.shared)),
                        )
                    }
                    None => Reply::new().tagged(&tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed."),
                },
                _ => bad("Invalid arguments."),
            },
            ("LOGIN", true, _) => bad("Already logged in."),
            ("SELECT" | "EXAMINE", true, _) => {
                let Some(name) = args.first().and_then(Token::text).filter(|_| args.len() == 1) else {
                    return bad("Invalid arguments.");
                };
                self.selected = None;
                if !name.eq_ignore_ascii_case(INBOX) {
                    return Reply::new().tagged(&tag, "NO", &format!("[NONEXISTENT] Mailbox doesn't exist: {name}"));
                }
                let read_only = command == "EXAMINE";
                self.select(&tag, read_only)
            }
            ("LIST", true, _) => match (args.first().and_then(Token::text), args.get(1).and_then(Token::text)) {
                (Some(_reference), Some(pattern)) if args.len() == 2 => {
                    let mut reply = Reply::new();
                    if pattern.is_empty() {
                        reply = reply.untagged("LIST (\\Noselect) \"/\" \"\"");
                    } else if matches!(pattern.as_str(), "*" | "%") || pattern.eq_ignore_ascii_case(INBOX) {
                        reply = reply.untagged("LIST (\\HasNoChildren) \"/\" INBOX");
                    }
                    reply.tagged(&tag, "OK", "List completed.")
                }
                _ => bad("Invalid arguments."),
            },
            ("APPEND", true, _) => self.append(&tag, &args),
            ("CLOSE", true, true) => {
                let read_only = self.selected.take().is_some_and(|s| s.read_only);
                if !read_only {
                    if let Some(mailbox) = self.mailbox_mut(&mut self.shared.lock()) {
                        mailbox.messages.retain(|m| !m.flags.contains("\\Deleted"));
                    }
                }
                Reply::new().tagged(&tag, "OK", "Close completed.")
            }
            ("FETCH", true, true) => self.fetch(&tag, &args, false),
            ("UID", true, true) => match args.first() {
                Some(Token::Atom(sub)) if sub.eq_ignore_ascii_case("FETCH") => self.fetch(&tag, &args[1..], true),
                _ => bad("Unknown command."),
            },
            ("IDLE", true, true) if self.shared.config.imap_idle => bad("Invalid arguments."),
            ("IDLE", ..) if self.shared.config.imap_idle => bad("Command not valid in this state."),
            ("SELECT" | "EXAMINE" | "LIST" | "APPEND" | "CLOSE" | "FETCH" | "UID", ..) => {
                bad("Command not valid in this state.")
            }
            _ => bad("Unknown command."),
        }
    }

    fn mailbox_mut<'s>(&self, state: &'s mut super::State) -> Option<&'s mut Mailbox> {
        state.by_user(self.user.as_deref()?)
    }

    fn select(&mut self, tag: &str, read_only: bool) -> Reply {
        let mut state = self.shared.lock();
        let Some(mailbox) = self.mailbox_mut(&mut state) else {
            return Reply::new().tagged(tag, "NO", "[NONEXISTENT] Mailbox doesn't exist: INBOX");
        };
        let exists = mailbox.messages.len();
        let reply = Reply::new()
            .untagged("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
            .untagged("OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.")
            .untagged(&format!("{exists} EXISTS"))
            .untagged("0 RECENT")
            .untagged(&format!("OK [UIDVALIDITY {}] UIDs valid", mailbox.uid_validity))
            .untagged(&format!("OK [UIDNEXT {}] Predicted next UID", mailbox.next_uid))
            .tagged(
                tag,
                "OK",
                if read_only { "[READ-ONLY] Examine completed." } else { "[READ-WRITE] Select completed." },
            );
        drop(state);
        self.selected = Some(Selected { read_only, reported_exists: exists });
        reply
    }

    /// An IDLE under way: `* n EXISTS` as mail arrives, until the client sends DONE. False when
    /// the client went away.
    async fn idle_until_done<R, W>(&mut self, tag: &str, reader: &mut R, out: &mut W) -> io::Result<bool>
    where
        R: tokio::io::AsyncBufRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncBufReadExt;
        /// Counts the session as idling for as long as it lives.
        struct Idling<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Idling<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let shared = self.shared.clone();
        shared.idling.fetch_add(1, Ordering::SeqCst);
        let _idling = Idling(&shared.idling);
        loop {
            let news = self.new_mail(Reply::new());
            if !news.bytes.is_empty() {
                out.write_all(&news.bytes).await?;
                out.flush().await?;
            }
            tokio::select! {
                // fill_buf consumes nothing: the line is read whole below.
                filled = reader.fill_buf() => {
                    if filled?.is_empty() {
                        return Ok(false);
                    }
                    break;
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            }
        }
        let answer = match read_line(reader, LINE_LIMIT).await? {
            None => return Ok(false),
            Some(line) if line.eq_ignore_ascii_case(b"DONE") => format!("{tag} OK Idle completed.\r\n"),
            Some(_) => format!("{tag} BAD Expected DONE.\r\n"),
        };
        out.write_all(answer.as_bytes()).await?;
        out.flush().await?;
        Ok(true)
    }

    /// `* n EXISTS` when mail arrived since the client was last told.
    fn new_mail(&mut self, reply: Reply) -> Reply {
        let Some(selected) = &self.selected else { return reply };
        let exists = self.mailbox_mut(&mut self.shared.lock()).map_or(0, |m| m.messages.len());
        if exists == selected.reported_exists {
            return reply;
        }
        if let Some(selected) = self.selected.as_mut() {
            selected.reported_exists = exists;
        }
        reply.untagged(&format!("{exists} EXISTS"))
    }

    /// `APPEND mailbox [(flags)] ["date-time"] literal`.
    fn append(&mut self, tag: &str, args: &[Token]) -> Reply {
        let bad = |text: &str| Reply::new().tagged(tag, "BAD", &format!("Error in IMAP command APPEND: {text}"));
        let Some(name) = args.first().and_then(Token::text) else { return bad("Invalid arguments.") };
        let (mut flags, mut date, mut message) = (BTreeSet::new(), None, None);
        for arg in &args[1..] {
            match arg {
                Token::List(list) if message.is_none() && date.is_none() => {
                    for flag in list {
                        match flag {
                            Token::Atom(flag) if flag.starts_with('\\') && flag != "\\Recent" => {
                                flags.insert(flag.clone());
                            }
                            _ => return bad("Invalid flag list."),
                        }
                    }
                }
                Token::Quoted(text) if message.is_none() => match parse_internal_date(text) {
                    Some(at) => date = Some(at),
                    None => return bad("Invalid date-time."),
                },
                Token::Literal(bytes) if message.is_none() => message = Some(bytes.clone()),
                _ => return bad("Invalid arguments."),
            }
        }
        let Some(message) = message else { return bad("Missing message literal.") };
        if !name.eq_ignore_ascii_case(INBOX) {
            return Reply::new().tagged(tag, "NO", &format!("[TRYCREATE] Mailbox doesn't exist: {name}"));
        }
        {
            let mut state = self.shared.lock();
            let Some(mailbox) = self.mailbox_mut(&mut state) else {
                return Reply::new().tagged(tag, "NO", "[TRYCREATE] Mailbox doesn't exist: INBOX");
            };
            mailbox.append(message, flags, date.unwrap_or_else(Utc::now));
        }
        self.new_mail(Reply::new()).tagged(tag, "OK", "Append completed.")
    }

    /// `FETCH set items` by sequence number, or `UID FETCH set items` by UID.
    fn fetch(&mut self, tag: &str, args: &[Token], by_uid: bool) -> Reply {
        let name = if by_uid { "UID FETCH" } else { "FETCH" };
        let bad = |text: &str| Reply::new().tagged(tag, "BAD", &format!("Error in IMAP command {name}: {text}"));
        let (Some(Token::Atom(set)), Some(items), 2) = (args.first(), args.get(1), args.len()) else {
            return bad("Invalid arguments.");
        };
        let mut items = match parse_items(items) {
            Ok(items) => items,
            Err(reason) => return bad(&reason),
        };
        if by_uid && !items.contains(&Item::Uid) {
            items.insert(0, Item::Uid);
        }
        let read_only = self.selected.as_ref().is_some_and(|s| s.read_only);
        let mut state = self.shared.lock();
        let Some(mailbox) = self.mailbox_mut(&mut state) else { return bad("No mailbox selected.") };
        let largest = if by_uid { mailbox.messages.last().map_or(0, |m| m.uid) } else { mailbox.messages.len() as u32 };
        let ranges = match parse_set(set, largest) {
            Ok(ranges) => ranges,
            Err(reason) => return bad(&reason),
        };
        if !by_uid && ranges.iter().any(|(_, high)| *high > largest) {
            return bad("Invalid messageset.");
        }
        let mut reply = Reply::new();
        for (index, message) in mailbox.messages.iter_mut().enumerate() {
            let number = if by_uid { message.uid } else { index as u32 + 1 };
            if !ranges.iter().any(|(low, high)| (*low..=*high).contains(&number)) {
                continue;
            }
            let marks_seen = !read_only && items.iter().any(Item::marks_seen) && !message.flags.contains("\\Seen");
            if marks_seen {
                message.flags.insert("\\Seen".into());
            }
            reply.bytes.extend_from_slice(format!("* {} FETCH (", index + 1).as_bytes());
            let mut first = true;
            for item in &items {
                if !first {
                    reply.bytes.push(b' ');
                }
                first = false;
                item.write(message, &mut reply.bytes);
            }
            if marks_seen && !items.contains(&Item::Flags) {
                reply.bytes.push(b' ');
                Item::Flags.write(message, &mut reply.bytes);
            }
            reply.bytes.extend_from_slice(b")\r\n");
        }
        drop(state);
        let mut reply = self.new_mail(reply).tagged(tag, "OK", "Fetch completed.");
        reply.fetch = true;
        reply
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Full,
    Header,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Uid,
    Flags,
    InternalDate,
    Rfc822Size,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Body { section: Section, peek: bool },
}

impl Item {
    fn marks_seen(&self) -> bool {
        matches!(self, Item::Rfc822 | Item::Rfc822Text | Item::Body { peek: false, .. })
    }

    fn write(&self, message: &StoredMessage, out: &mut Vec<u8>) {
        let literal = |out: &mut Vec<u8>, name: &str, bytes: &[u8]| {
            out.extend_from_slice(format!("{name} {{{}}}\r\n", bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
        };
        let (header, text) = split_header(&message.raw);
        match self {
            Item::Uid => out.extend_from_slice(format!("UID {}", message.uid).as_bytes()),
            Item::Flags => {
                let flags: Vec<&str> = message.flags.iter().map(String::as_str).collect();
                out.extend_from_slice(format!("FLAGS ({})", flags.join(" ")).as_bytes());
            }
            Item::InternalDate => out.extend_from_slice(
                format!("INTERNALDATE \"{}\"", message.internal_date.format("%d-%b-%Y %H:%M:%S %z")).as_bytes(),
            ),
            Item::Rfc822Size => out.extend_from_slice(format!("RFC822.SIZE {}", message.raw.len()).as_bytes()),
            Item::Rfc822 => literal(out, "RFC822", &message.raw),
            Item::Rfc822Header => literal(out, "RFC822.HEADER", header),
            Item::Rfc822Text => literal(out, "RFC822.TEXT", text),
            Item::Body { section: Section::Full, .. } => literal(out, "BODY[]", &message.raw),
            Item::Body { section: Section::Header, .. } => literal(out, "BODY[HEADER]", header),
            Item::Body { section: Section::Text, .. } => literal(out, "BODY[TEXT]", text),
        }
    }
}

/// The header (with the empty line that ends it) and the text of a message.
fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|at| at + 2))
        .unwrap_or(raw.len());
    raw.split_at(end)
}

fn parse_items(token: &Token) -> Result<Vec<Item>, String> {
    let names: Vec<String> = match token {
        Token::Atom(name) => vec![name.clone()],
        Token::List(list) => list
            .iter()
            .map(|t| match t {
                Token::Atom(name) => Ok(name.clone()),
                _ => Err("Invalid fetch attribute.".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("Invalid fetch attribute.".into()),
    };
    let mut items = Vec::new();
    for name in names {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "FAST" => items.extend([Item::Flags, Item::InternalDate, Item::Rfc822Size]),
            "UID" => items.push(Item::Uid),
            "FLAGS" => items.push(Item::Flags),
            "INTERNALDATE" => items.push(Item::InternalDate),
            "RFC822.SIZE" => items.push(Item::Rfc822Size),
            "RFC822" => items.push(Item::Rfc822),
            "RFC822.HEADER" => items.push(Item::Rfc822Header),
            "RFC822.TEXT" => items.push(Item::Rfc822Text),
            _ => {
                let (peek, rest) = match upper.strip_prefix("BODY.PEEK[") {
                    Some(rest) => (true, rest),
                    None => (false, upper.strip_prefix("BODY[").ok_or(format!("Unknown fetch attribute {name}"))?),
                };
                let section = match rest {
                    "]" => Section::Full,
                    "HEADER]" => Section::Header,
                    "TEXT]" => Section::Text,
                    _ => return Err(format!("Unsupported fetch section in {name}")),
                };
                items.push(Item::Body { section, peek });
            }
        }
    }
    Ok(items)
}

/// A sequence set (`1`, `2:4`, `5:*`, `1,3:*`) as inclusive ranges; `*` is `largest`.
fn parse_set(text: &str, largest: u32) -> Result<Vec<(u32, u32)>, String> {
    let number = |n: &str| -> Result<u32, String> {
        match n {
            "*" => Ok(largest),
            _ => n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| "Invalid messageset.".to_owned()),
        }
    };
    text.split(',')
        .map(|element| {
            let (low, high) = match element.split_once(':') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => (number(element)?, number(element)?),
            };
            Ok((low.min(high), low.max(high)))
        })
        .collect()
}

/// `date-time` of RFC 3501: `"02-Dec-2026 06:17:41 +0900"` (the day may be space-padded).
fn parse_internal_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z").ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_into_atoms_strings_literals_and_lists() {
        let parts = vec![
            Part::Text(b"a1 APPEND \"INBOX\" (\\Seen) \"02-Dec-2026 06:17:41 +0900\" ".to_vec()),
            Part::Literal(b"Subject: x\r\n\r\nhi".to_vec()),
            Part::Text(Vec::new()),
        ];
        let tokens = tokenize(&parts).unwrap();
        assert_eq!(tokens[0], Token::Atom("a1".into()));
        assert_eq!(tokens[2], Token::Quoted("INBOX".into()));
        assert_eq!(tokens[3], Token::List(vec![Token::Atom("\\Seen".into())]));
        assert_eq!(tokens[5], Token::Literal(b"Subject: x\r\n\r\nhi".to_vec()));
        let fetch = tokenize(&[Part::Text(b"b UID FETCH 5:* (UID BODY.PEEK[HEADER.FIELDS (FROM TO)])".to_vec())]);
        assert_eq!(
            fetch.unwrap()[4],
            Token::List(vec![Token::Atom("UID".into()), Token::Atom("BODY.PEEK[HEADER.FIELDS (FROM TO)]".into())])
        );
        assert!(tokenize(&[Part::Text(b"c LOGIN \"unterminated".to_vec())]).is_err());
        assert!(tokenize(&[Part::Text(b"d FETCH 1 (UID".to_vec())]).is_err());
        assert!(tokenize(&[Part::Text(b"e FETCH 1 UID)".to_vec())]).is_err());
    }

    #[test]
    fn sequence_sets_follow_rfc_3501() {
        assert_eq!(parse_set("1", 9).unwrap(), vec![(1, 1)]);
        assert_eq!(parse_set("2:4,7", 9).unwrap(), vec![(2, 4), (7, 7)]);
        assert_eq!(parse_set("5:*", 9).unwrap(), vec![(5, 9)]);
        assert_eq!(parse_set("12:*", 9).unwrap(), vec![(9, 12)], "n:* with n above the largest takes the largest");
        assert!(parse_set("0", 9).is_err());
        assert!(parse_set("a:b", 9).is_err());
        assert_eq!(literal_size(b"a LOGIN {4}"), Some(4));
        assert_eq!(literal_size(b"a LOGIN x"), None);
        assert_eq!(
            parse_internal_date(" 2-Dec-2026 06:17:41 +0900").map(|t| t.to_rfc3339()),
            Some("2026-12-01T21:17:41+00:00".into())
        );
    }
}
