//! Upcasting: an event stored with an older payload shape is brought to the current shape on
//! read, one schema step at a time, keyed by (type, schema). The stored row never changes.

use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// One step: the payload of `event_type` at schema `from` becomes schema `from + 1`.
pub type UpcastStep = fn(Value) -> Result<Value, String>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UpcastError {
    #[error("{event_type} schema {found} is newer than this build understands ({current})")]
    Newer { event_type: String, found: u32, current: u32 },
    #[error("no upcaster for {event_type} from schema {from} (current is {current})")]
    MissingStep { event_type: String, from: u32, current: u32 },
    #[error("upcasting {event_type} from schema {from} failed: {reason}")]
    Failed { event_type: String, from: u32, reason: String },
}

#[derive(Debug, Default, Clone)]
pub struct Upcasters {
    steps: HashMap<(String, u32), UpcastStep>,
}

impl Upcasters {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(mut self, event_type: &str, from_schema: u32, step: UpcastStep) -> Self {
        self.steps.insert((event_type.to_owned(), from_schema), step);
        self
    }

    /// The payload at `current` schema. Borrowed when it already is (the common, fast case).
    pub fn upcast<'a>(
        &self,
        event_type: &str,
        schema: u32,
        current: u32,
        data: &'a str,
    ) -> Result<Cow<'a, str>, UpcastError> {
        if schema == current {
            return Ok(Cow::Borrowed(data));
        }
        if schema > current {
            return Err(UpcastError::Newer { event_type: event_type.to_owned(), found: schema, current });
        }
        let failed =
            |from: u32, reason: String| UpcastError::Failed { event_type: event_type.to_owned(), from, reason };
        let mut value: Value = serde_json::from_str(data).map_err(|e| failed(schema, e.to_string()))?;
        for from in schema..current {
            let step = self.steps.get(&(event_type.to_owned(), from)).ok_or_else(|| UpcastError::MissingStep {
                event_type: event_type.to_owned(),
                from,
                current,
            })?;
            value = step(value).map_err(|reason| failed(from, reason))?;
        }
        Ok(Cow::Owned(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rename_mall(mut value: Value) -> Result<Value, String> {
        let object = value.as_object_mut().ok_or("payload is not an object")?;
        let mall = object.remove("mall").ok_or("no field mall")?;
        object.insert("marketplace".into(), mall);
        Ok(value)
    }

    fn add_source(mut value: Value) -> Result<Value, String> {
        value["source"] = json!("api");
        Ok(value)
    }

    #[test]
    fn current_schema_is_borrowed_untouched() {
        let upcasters = Upcasters::new();
        let out = upcasters.upcast("X", 2, 2, r#"{"a":1}"#).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
    }

    #[test]
    fn steps_chain_from_old_schema_to_current() {
        let upcasters = Upcasters::new().register("X", 1, rename_mall).register("X", 2, add_source);
        let out = upcasters.upcast("X", 1, 3, r#"{"mall":"rakuten"}"#).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value, json!({"marketplace": "rakuten", "source": "api"}));
    }

    #[test]
    fn newer_and_missing_steps_are_named() {
        let upcasters = Upcasters::new().register("X", 1, rename_mall);
        assert_eq!(
            upcasters.upcast("X", 5, 3, "{}").unwrap_err(),
            UpcastError::Newer { event_type: "X".into(), found: 5, current: 3 }
        );
        assert_eq!(
            upcasters.upcast("X", 2, 3, "{}").unwrap_err(),
            UpcastError::MissingStep { event_type: "X".into(), from: 2, current: 3 }
        );
        let failed = upcasters.upcast("X", 1, 2, r#"{"other":1}"#).unwrap_err();
        assert!(failed.to_string().contains("no field mall"), "{failed}");
    }
}
