//! Request validation with Amazon's own messages (spec §4.2). Keys are looked up exactly as
//! Amazon spells them, so a wrongly cased key is a missing parameter, as it is at Amazon.

use serde_json::{Map, Value};

/// A 400 `InvalidInput` with Amazon's message.
#[derive(Debug)]
pub struct Invalid(pub String);

pub fn missing(parameter: &str) -> Invalid {
    Invalid(format!("The request must contain the parameter {parameter}."))
}

pub fn invalid_value(value: &str, parameter: &str, reason: &str) -> Invalid {
    Invalid(format!("Value {value} for parameter {parameter} is invalid. Reason: {reason}."))
}

pub fn object<'a>(value: &'a Value, parameter: &str) -> Result<&'a Map<String, Value>, Invalid> {
    value.as_object().ok_or_else(|| invalid_value(&value.to_string(), parameter, "InvalidValue"))
}

pub fn required<'a>(object: &'a Map<String, Value>, key: &str, parameter: &str) -> Result<&'a Value, Invalid> {
    match object.get(key) {
        None | Some(Value::Null) => Err(missing(parameter)),
        Some(value) => Ok(value),
    }
}

/// A required string of at most `max` characters.
pub fn text<'a>(object: &'a Map<String, Value>, key: &str, parameter: &str, max: usize) -> Result<&'a str, Invalid> {
    let value = required(object, key, parameter)?;
    let text = value.as_str().ok_or_else(|| invalid_value(&value.to_string(), parameter, "InvalidValue"))?;
    if text.trim().is_empty() {
        return Err(missing(parameter));
    }
    if text.chars().count() > max {
        return Err(invalid_value(text, parameter, "InvalidValue"));
    }
    Ok(text)
}

pub fn optional_text<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    parameter: &str,
    max: usize,
) -> Result<Option<&'a str>, Invalid> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text(object, key, parameter, max).map(Some),
    }
}

/// `address` / `destinationAddress` with the length limits of the MWS contract (spec §4.1).
pub fn address(value: &Value, parameter: &str) -> Result<(), Invalid> {
    let address = object(value, parameter)?;
    text(address, "name", &format!("{parameter}.Name"), 50)?;
    text(address, "addressLine1", &format!("{parameter}.AddressLine1"), 60)?;
    optional_text(address, "addressLine2", &format!("{parameter}.AddressLine2"), 60)?;
    optional_text(address, "addressLine3", &format!("{parameter}.AddressLine3"), 60)?;
    optional_text(address, "city", &format!("{parameter}.City"), 50)?;
    optional_text(address, "districtOrCounty", &format!("{parameter}.DistrictOrCounty"), 150)?;
    let country = text(address, "countryCode", &format!("{parameter}.CountryCode"), 2)?;
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(invalid_value(country, &format!("{parameter}.CountryCode"), "InvalidValue"));
    }
    text(address, "postalCode", &format!("{parameter}.PostalCode"), 20)?;
    // Always required for Japan (the prefecture).
    if country == "JP" {
        text(address, "stateOrRegion", &format!("{parameter}.StateOrRegion"), 150)?;
    }
    optional_text(address, "phone", &format!("{parameter}.Phone"), 20)?;
    Ok(())
}

/// What Amazon refuses of a Japanese address beyond the model's per-field limits: a name over
/// the name limit, and lines 1-3 together over the lines limit (full- and half-width alike).
pub fn japan_limits(address: &Value, parameter: &str, config: &super::AmazonSandboxConfig) -> Result<(), Invalid> {
    if address.get("countryCode").and_then(Value::as_str) != Some("JP") {
        return Ok(());
    }
    let text = |key: &str| address.get(key).and_then(Value::as_str).unwrap_or("");
    let name = text("name");
    if name.chars().count() > config.name_limit {
        return Err(invalid_value(name, &format!("{parameter}.Name"), "InvalidValue"));
    }
    let lines: String = ["addressLine1", "addressLine2", "addressLine3"].iter().map(|key| text(key)).collect();
    if lines.chars().count() > config.address_lines_limit {
        return Err(invalid_value(text("addressLine1"), &format!("{parameter}.AddressLine1"), "InvalidValue"));
    }
    Ok(())
}

/// `items[]`: (sellerSku, sellerFulfillmentOrderItemId, quantity) of each line.
pub fn items(value: Option<&Value>) -> Result<Vec<(String, String, u32)>, Invalid> {
    let items = value.and_then(Value::as_array).filter(|a| !a.is_empty()).ok_or_else(|| missing("Items"))?;
    if items.len() > 100 {
        return Err(invalid_value(&items.len().to_string(), "Items", "InvalidValue"));
    }
    let mut lines = Vec::with_capacity(items.len());
    let mut ids = std::collections::HashSet::new();
    for item in items {
        let item = object(item, "Items")?;
        let sku = text(item, "sellerSku", "Items.SellerSku", 50)?;
        let id = text(item, "sellerFulfillmentOrderItemId", "Items.SellerFulfillmentOrderItemId", 50)?;
        let quantity = required(item, "quantity", "Items.Quantity")?;
        let quantity = quantity
            .as_u64()
            .filter(|q| (1..=250).contains(q))
            .ok_or_else(|| invalid_value(&quantity.to_string(), "Items.Quantity", "InvalidValue"))?;
        if !ids.insert(id.to_owned()) {
            return Err(invalid_value(id, "Items.SellerFulfillmentOrderItemId", "DuplicateValue"));
        }
        lines.push((sku.to_owned(), id.to_owned(), quantity as u32));
    }
    if lines.iter().map(|l| l.2).sum::<u32>() > 250 {
        return Err(invalid_value("quantity", "Items", "InvalidValue"));
    }
    Ok(lines)
}

/// ISO 8859-1 only, no double spaces (displayableOrderId).
pub fn latin1(text: &str, parameter: &str) -> Result<(), Invalid> {
    if text.chars().any(|c| c as u32 > 0xFF) || text.contains("  ") || text.trim() != text {
        return Err(invalid_value(text, parameter, "InvalidValue"));
    }
    Ok(())
}

pub fn timestamp(text: &str) -> Result<chrono::DateTime<chrono::Utc>, Invalid> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| Invalid("timestamp must follow ISO8601".to_owned()))
}
