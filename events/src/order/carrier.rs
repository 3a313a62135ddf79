//! The carriers Amazon hands Japanese parcels to, recognised from the carrier text Amazon gives
//! (`YAMATO`, `Sagawa Express`, `JAPAN POST`, …). Each marketplace adapter maps a [`Carrier`] to
//! its own code; none of them reads another's table.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Yamato,
    Sagawa,
    JapanPost,
    /// Amazon Logistics and anything else: the marketplaces' "other".
    Other,
}

impl Carrier {
    pub fn recognise(text: &str) -> Self {
        let text = text.to_lowercase();
        let any = |words: &[&str]| words.iter().any(|w| text.contains(w));
        if any(&["yamato", "ヤマト"]) {
            Self::Yamato
        } else if any(&["sagawa", "佐川"]) {
            Self::Sagawa
        } else if any(&["japan post", "jp post", "yubin", "日本郵便"]) {
            Self::JapanPost
        } else {
            Self::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Carrier;

    #[test]
    fn amazons_carrier_texts_are_recognised() {
        assert_eq!(Carrier::recognise("YAMATO"), Carrier::Yamato);
        assert_eq!(Carrier::recognise("ヤマト運輸"), Carrier::Yamato);
        assert_eq!(Carrier::recognise("Sagawa Express"), Carrier::Sagawa);
        assert_eq!(Carrier::recognise("JAPAN POST"), Carrier::JapanPost);
        assert_eq!(Carrier::recognise("Amazon Logistics"), Carrier::Other);
    }
}
