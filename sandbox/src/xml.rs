//! The fakes' own XML reading and writing (Yahoo's APIs speak XML). Written for the fake, not
//! shared with the client: a request the client escapes wrongly fails to parse here.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One element: its name, its text (CDATA included, unescaped) and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// Parses a whole document strictly: unbalanced tags, bad entities and trailing garbage
    /// are errors.
    pub fn parse(document: &str) -> Result<Node, String> {
        let mut reader = Reader::from_str(document);
        reader.config_mut().check_end_names = true;
        let mut open: Vec<Node> = vec![Node::default()];
        loop {
            let event = reader.read_event().map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
            match event {
                Event::Start(start) => open.push(Node { name: name_of(&start), ..Node::default() }),
                Event::Empty(start) => {
                    let node = Node { name: name_of(&start), ..Node::default() };
                    open.last_mut().ok_or("no parent")?.children.push(node);
                }
                Event::End(_) => {
                    let node = open.pop().ok_or("unbalanced end tag")?;
                    open.last_mut().ok_or("unbalanced end tag")?.children.push(node);
                }
                Event::Text(text) => {
                    let raw: &str = text.as_ref();
                    let unescaped = quick_xml::escape::unescape(raw).map_err(|e| e.to_string())?;
                    open.last_mut().ok_or("text outside the document")?.text.push_str(&unescaped);
                }
                Event::GeneralRef(reference) => {
                    let name: &str = reference.as_ref();
                    let entity = format!("&{name};");
                    let resolved = quick_xml::escape::unescape(&entity).map_err(|e| e.to_string())?.into_owned();
                    open.last_mut().ok_or("text outside the document")?.text.push_str(&resolved);
                }
                Event::CData(data) => {
                    open.last_mut().ok_or("text outside the document")?.text.push_str(&data.into_inner());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        let mut document = open.pop().filter(|_| open.is_empty()).ok_or("an element is never closed")?;
        if document.children.len() != 1 {
            return Err(format!("a document has one root element, not {}", document.children.len()));
        }
        Ok(document.children.remove(0))
    }

    /// The first element at `path` (`A/B/C`) below this one.
    pub fn at(&self, path: &str) -> Option<&Node> {
        path.split('/').try_fold(self, |node, name| node.children.iter().find(|c| c.name == name))
    }

    /// The text at `path`, trimmed; None when the element is absent or empty (Yahoo treats
    /// both as "not given").
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path).map(|node| node.text.trim()).filter(|text| !text.is_empty())
    }
}

fn name_of(start: &quick_xml::events::BytesStart<'_>) -> String {
    let name = start.name();
    let text: &str = name.as_ref();
    text.to_owned()
}

/// Text made safe inside an element.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_read_strictly() {
        let node = Node::parse("<?xml version=\"1.0\"?><Req><A><B>x &amp; <![CDATA[<y>]]></B></A></Req>").unwrap();
        assert_eq!(node.text_at("A/B"), Some("x & <y>"));
        assert!(Node::parse("<Req><A></Req>").is_err());
        assert!(Node::parse("<Req>a & b</Req>").is_err(), "an unescaped ampersand is refused");
        assert!(Node::parse("<Req/><Req/>").is_err());
        assert_eq!(escape("a<b&c"), "a&lt;b&amp;c");
    }
}
