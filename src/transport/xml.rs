//! A small XML tree over quick-xml, for Yahoo's XML APIs: parse a document into elements
//! (CDATA and text alike), find by path, and escape text for requests.

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    /// Text and CDATA content directly inside this element, unescaped.
    pub text: String,
    pub children: Vec<Element>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML at byte {position}: {reason}")]
pub struct XmlError {
    pub position: u64,
    pub reason: String,
}

impl Element {
    /// Parses a whole document; a truncated or unbalanced document is an error.
    pub fn parse(document: &str) -> Result<Element, XmlError> {
        let mut reader = Reader::from_str(document);
        let mut stack: Vec<Element> = vec![Element::default()];
        let error = |reader: &Reader<&[u8]>, reason: String| XmlError { position: reader.buffer_position(), reason };
        loop {
            match reader.read_event() {
                Ok(Event::Start(start)) => stack.push(open(&start).map_err(|e| error(&reader, e))?),
                Ok(Event::Empty(start)) => {
                    let element = open(&start).map_err(|e| error(&reader, e))?;
                    stack.last_mut().ok_or_else(|| error(&reader, "no parent".into()))?.children.push(element);
                }
                Ok(Event::End(end)) => {
                    let element = stack.pop().ok_or_else(|| error(&reader, "unbalanced end tag".into()))?;
                    let closing = end.name().as_ref().to_owned();
                    if element.name != closing {
                        return Err(error(&reader, format!("</{closing}> closes <{}>", element.name)));
                    }
                    stack.last_mut().ok_or_else(|| error(&reader, "unbalanced end tag".into()))?.children.push(element);
                }
                Ok(Event::Text(text)) => {
                    let raw: &str = &text;
                    let unescaped = quick_xml::escape::unescape(raw).map_err(|e| error(&reader, e.to_string()))?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&unescaped);
                    }
                }
                Ok(Event::GeneralRef(reference)) => {
                    let name: &str = &reference;
                    let entity = format!("&{name};");
                    let resolved =
                        quick_xml::escape::unescape(&entity).map_err(|e| error(&reader, e.to_string()))?.into_owned();
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&resolved);
                    }
                }
                Ok(Event::CData(data)) => {
                    let text = data.into_inner().into_owned();
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&text);
                    }
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => return Err(error(&reader, e.to_string())),
            }
        }
        if stack.len() != 1 {
            return Err(XmlError {
                position: document.len() as u64,
                reason: format!("<{}> is never closed", stack.last().map_or("", |e| e.name.as_str())),
            });
        }
        let mut document_node = stack.pop().unwrap_or_default();
        match document_node.children.len() {
            1 => Ok(document_node.children.remove(0)),
            0 => Err(XmlError { position: 0, reason: "no root element".into() }),
            _ => Err(XmlError { position: 0, reason: "more than one root element".into() }),
        }
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at `A/B/C` below this one.
    pub fn at(&self, path: &str) -> Option<&Element> {
        path.split('/').filter(|p| !p.is_empty()).try_fold(self, |element, name| element.child(name))
    }

    /// Trimmed text at `path`; None when absent or empty.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path).map(|e| e.text.trim()).filter(|t| !t.is_empty())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn open(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let name = start.name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key: &str = attribute.key.as_ref();
        let key = key.to_owned();
        let raw: &str = attribute.value.as_ref();
        let value = quick_xml::escape::unescape(raw).map_err(|e| e.to_string())?.into_owned();
        attributes.push((key, value));
    }
    Ok(Element { name, attributes, ..Element::default() })
}

/// Escapes text for an element body (`& < > " '`).
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// `<name>escaped text</name>`.
pub fn tag(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cdata_entities_and_paths() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
            <ResultSet totalResultsAvailable="1"><Result><Status>OK</Status>
            <OrderInfo><Ship><ShipCity><![CDATA[千代田区]]></ShipCity><Note>a &amp; b &lt;c&gt;</Note></Ship>
            <Item><LineId>1</LineId></Item><Item><LineId>2</LineId></Item></OrderInfo></Result></ResultSet>"#;
        let root = Element::parse(doc).unwrap();
        assert_eq!(root.attribute("totalResultsAvailable"), Some("1"));
        assert_eq!(root.text_at("Result/Status"), Some("OK"));
        assert_eq!(root.text_at("Result/OrderInfo/Ship/ShipCity"), Some("千代田区"));
        assert_eq!(root.text_at("Result/OrderInfo/Ship/Note"), Some("a & b <c>"));
        let lines: Vec<_> =
            root.at("Result/OrderInfo").unwrap().children_named("Item").filter_map(|i| i.text_at("LineId")).collect();
        assert_eq!(lines, ["1", "2"]);
    }

    #[test]
    fn truncated_and_unbalanced_documents_are_errors() {
        assert!(Element::parse("<Result><Status>OK</Status>").is_err());
        assert!(Element::parse("<Result><Status>OK</Result>").is_err());
        assert!(Element::parse("").is_err());
        assert!(Element::parse("not xml at all").is_err());
    }

    #[test]
    fn escaping_keeps_buyer_text_inert() {
        assert_eq!(tag("Notes", "<script>&"), "<Notes>&lt;script&gt;&amp;</Notes>");
    }
}
