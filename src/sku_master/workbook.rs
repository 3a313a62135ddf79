//! Reading the `SKUMapping` sheet. Errors name the sheet, row and cell, as Excel shows them.

use super::{Component, MappedSku, SkuMapping, SHEET};
use calamine::{Data, Reader};
use events::store::sha256_hex;
use events::SellerSku;
use std::collections::HashMap;
use std::io::Cursor;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkuMasterError {
    #[error("SKUマスター {path} を読めません: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} に {SHEET} シートがありません（シート: {sheets}）")]
    NoSheet { path: String, sheets: String },
    #[error("{path}、{SHEET} シート: 1行目に列名が必要です。{column} がありません（例: \"marketplace_sku\", \"seller_sku\", \"quantity\"）")]
    MissingColumn { path: String, column: &'static str },
    #[error("{path}、{SHEET} シート、セル {cell}: {column} が空です")]
    EmptyKey { path: String, cell: String, column: &'static str },
    #[error("{path}、{SHEET} シート、セル {cell}: モールSKU「{sku}」と出品者SKU「{seller_sku}」の組が重複しています（最初は {first_row} 行目）")]
    Duplicate { path: String, cell: String, sku: String, seller_sku: String, first_row: usize },
    #[error("{path}、{SHEET} シート、セル {cell}: セット「{sku}」の{column}が {first_row} 行目と違います。セットの各行は同じ値にするか、空欄にしてください")]
    SetRowsDisagree { path: String, cell: String, sku: String, column: &'static str, first_row: usize },
    #[error("{path}、{SHEET} シート、セル {cell}: 「{value}」は1以上の整数ではありません")]
    BadNumber { path: String, cell: String, value: String },
    #[error("{path}、{SHEET} シート、セル {cell}: 在庫バッファ「{value}」は0以上の整数ではありません")]
    BadBuffer { path: String, cell: String, value: String },
    #[error("{path}、{SHEET} シート、セル {cell}: 在庫連携のキー「{value}」が使えません: {why}")]
    BadStockKey { path: String, cell: String, value: String, why: String },
    #[error("{path}、{SHEET} シート: 見出しの下にマッピングの行がありません（行のないマスターではすべての注文が止まります）")]
    NoRows { path: String },
    #[error("{path} には未完了の注文が使うSKUがありません: {skus}。戻すか、先にそれらの注文を片付けてください")]
    DropsSkusOfOpenOrders { path: String, skus: String },
}

/// Column letters as Excel shows them (0 -> A, 26 -> AA).
fn column_letter(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push((b'A' + (index % 26) as u8) as char);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.iter().rev().collect()
}

fn cell_text(cell: Option<&Data>) -> String {
    match cell {
        None | Some(Data::Empty) => String::new(),
        Some(Data::String(s)) => s.trim().to_owned(),
        Some(Data::Int(i)) => i.to_string(),
        Some(Data::Float(f)) if f.fract() == 0.0 => format!("{f:.0}"),
        Some(other) => other.to_string().trim().to_owned(),
    }
}

const KEY_HEADERS: [&str; 4] = ["marketplace_sku", "モールsku", "商品管理番号", "mall_sku"];
const SELLER_HEADERS: [&str; 4] = ["seller_sku", "amazon_sku", "amazonsku", "出品者sku"];
const QUANTITY_HEADERS: [&str; 4] = ["quantity", "multiplier", "数量", "入数"];
const BUFFER_HEADERS: [&str; 4] = ["buffer", "stock_buffer", "在庫バッファ", "安全在庫"];
const RAKUTEN_MANAGE_HEADERS: [&str; 2] = ["rakuten_manage_number", "楽天商品管理番号"];
const RAKUTEN_VARIANT_HEADERS: [&str; 2] = ["rakuten_variant_id", "楽天sku管理番号"];
const YAHOO_CODE_HEADERS: [&str; 2] = ["yahoo_item_code", "yahoo商品コード"];

pub fn parse_workbook(bytes: &[u8], path: &str) -> Result<SkuMapping, SkuMasterError> {
    let unreadable = |reason: String| SkuMasterError::Unreadable { path: path.to_owned(), reason };
    let mut workbook =
        calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
    let names = workbook.sheet_names();
    if !names.iter().any(|n| n == SHEET) {
        return Err(SkuMasterError::NoSheet { path: path.to_owned(), sheets: names.join(", ") });
    }
    let range = workbook.worksheet_range(SHEET).map_err(|e| unreadable(e.to_string()))?;
    let (first_row, first_col) = range.start().map_or((0, 0), |(r, c)| (r as usize, c as usize));
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|r| r.iter().map(|c| cell_text(Some(c)).to_lowercase().replace(' ', "_")).collect())
        .unwrap_or_default();
    let find = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let key_col =
        find(&KEY_HEADERS).ok_or(SkuMasterError::MissingColumn { path: path.to_owned(), column: "marketplace_sku" })?;
    let seller_col =
        find(&SELLER_HEADERS).ok_or(SkuMasterError::MissingColumn { path: path.to_owned(), column: "seller_sku" })?;
    let quantity_col = find(&QUANTITY_HEADERS);
    let buffer_col = find(&BUFFER_HEADERS);
    let stock_cols = StockColumns {
        rakuten_manage: find(&RAKUTEN_MANAGE_HEADERS),
        rakuten_variant: find(&RAKUTEN_VARIANT_HEADERS),
        yahoo_code: find(&YAHOO_CODE_HEADERS),
    };
    let cell = |row: usize, col: usize| format!("{}{}", column_letter(first_col + col), first_row + row + 1);

    let mut entries = HashMap::new();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for (offset, row) in rows.enumerate() {
        let row_index = offset + 1;
        let key = cell_text(row.get(key_col));
        let seller = cell_text(row.get(seller_col));
        let quantity = quantity_col.map(|c| cell_text(row.get(c))).unwrap_or_default();
        let buffer = buffer_col.map(|c| cell_text(row.get(c))).unwrap_or_default();
        if key.is_empty() && seller.is_empty() && quantity.is_empty() {
            continue; // blank rows between blocks are common in hand-kept sheets
        }
        if key.is_empty() {
            return Err(SkuMasterError::EmptyKey {
                path: path.to_owned(),
                cell: cell(row_index, key_col),
                column: "marketplace_sku",
            });
        }
        if seller.is_empty() {
            return Err(SkuMasterError::EmptyKey {
                path: path.to_owned(),
                cell: cell(row_index, seller_col),
                column: "seller_sku",
            });
        }
        let multiplier = if quantity.is_empty() {
            1
        } else {
            quantity.parse::<u32>().ok().filter(|q| *q >= 1).ok_or_else(|| SkuMasterError::BadNumber {
                path: path.to_owned(),
                cell: cell(row_index, quantity_col.unwrap_or_default()),
                value: quantity.clone(),
            })?
        };
        let buffer = match buffer_col {
            Some(col) if !buffer.is_empty() => Some(buffer.parse::<u32>().map_err(|_| SkuMasterError::BadBuffer {
                path: path.to_owned(),
                cell: cell(row_index, col),
                value: buffer.clone(),
            })?),
            _ => None,
        };
        let stock_keys = stock_cols.keys(row, |col| cell(row_index, col), path)?;
        let component = Component { seller_sku: SellerSku(seller), multiplier };
        let Some(first) = first_seen.get(&key).copied() else {
            first_seen.insert(key.clone(), first_row + row_index + 1);
            entries.insert(key, MappedSku { components: vec![component], buffer, stock_keys });
            continue;
        };
        // Another row of the same marketplace SKU: a component of a set of different products.
        let Some(set) = entries.get_mut(&key) else { continue };
        let disagree = |col: usize, column| SkuMasterError::SetRowsDisagree {
            path: path.to_owned(),
            cell: cell(row_index, col),
            sku: key.clone(),
            column,
            first_row: first,
        };
        if set.components.iter().any(|c| c.seller_sku == component.seller_sku) {
            return Err(SkuMasterError::Duplicate {
                path: path.to_owned(),
                cell: cell(row_index, key_col),
                sku: key,
                seller_sku: component.seller_sku.0,
                first_row: first,
            });
        }
        match (set.buffer, buffer) {
            (Some(a), Some(b)) if a != b => return Err(disagree(buffer_col.unwrap_or_default(), "在庫バッファ")),
            (None, Some(_)) => set.buffer = buffer,
            _ => {}
        }
        for stock_key in stock_keys {
            match set.stock_keys.iter().find(|k| k.marketplace() == stock_key.marketplace()) {
                Some(known) if *known != stock_key => {
                    let col = match stock_key.marketplace() {
                        events::Marketplace::Rakuten => stock_cols.rakuten_manage,
                        events::Marketplace::Yahoo => stock_cols.yahoo_code,
                    };
                    return Err(disagree(col.unwrap_or_default(), "在庫連携のキー"));
                }
                Some(_) => {}
                None => set.stock_keys.push(stock_key),
            }
        }
        set.components.push(component);
    }
    if entries.is_empty() {
        return Err(SkuMasterError::NoRows { path: path.to_owned() });
    }
    Ok(SkuMapping { entries, sha256: sha256_hex(bytes), path: path.to_owned(), loaded_at: None })
}

/// The optional columns naming where a listing's stock lives at each marketplace.
struct StockColumns {
    rakuten_manage: Option<usize>,
    rakuten_variant: Option<usize>,
    yahoo_code: Option<usize>,
}

impl StockColumns {
    fn keys(
        &self,
        row: &[Data],
        cell: impl Fn(usize) -> String,
        path: &str,
    ) -> Result<Vec<events::stock::StockKey>, SkuMasterError> {
        use events::stock::StockKey;
        let text = |col: Option<usize>| col.map(|c| cell_text(row.get(c))).unwrap_or_default();
        let bad = |col: Option<usize>, value: String, why: String| SkuMasterError::BadStockKey {
            path: path.to_owned(),
            cell: cell(col.unwrap_or_default()),
            value,
            why,
        };
        let mut keys = Vec::new();
        let (manage, variant) = (text(self.rakuten_manage), text(self.rakuten_variant));
        match (manage.is_empty(), variant.is_empty()) {
            (true, true) => {}
            (false, false) => keys.push(
                StockKey::rakuten(&manage, &variant).map_err(|why| bad(self.rakuten_manage, manage.clone(), why))?,
            ),
            (true, false) => {
                return Err(bad(self.rakuten_manage, variant, "楽天の商品管理番号とSKU管理番号は両方が必要です".into()))
            }
            (false, true) => {
                return Err(bad(self.rakuten_variant, manage, "楽天の商品管理番号とSKU管理番号は両方が必要です".into()))
            }
        }
        let code = text(self.yahoo_code);
        if !code.is_empty() {
            keys.push(StockKey::yahoo(&code).map_err(|why| bad(self.yahoo_code, code.clone(), why))?);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_xlsxwriter::Workbook;

    fn workbook(sheet: &str, rows: &[&[&str]]) -> Vec<u8> {
        let mut workbook = Workbook::new();
        let worksheet = workbook.add_worksheet();
        worksheet.set_name(sheet).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, value) in row.iter().enumerate() {
                if let Ok(number) = value.parse::<f64>() {
                    worksheet.write_number(r as u32, c as u16, number).unwrap();
                } else if !value.is_empty() {
                    worksheet.write_string(r as u32, c as u16, *value).unwrap();
                }
            }
        }
        workbook.save_to_buffer().unwrap()
    }

    #[test]
    fn a_buffer_column_gives_listings_their_own_buffer_and_a_bad_one_is_refused_naming_the_cell() {
        let bytes = workbook(
            "SKUMapping",
            &[
                &["marketplace_sku", "seller_sku", "quantity", "buffer"],
                &["tea", "T", "1", "3"],
                &["cup", "C", "1", ""],
            ],
        );
        let mapping = parse_workbook(&bytes, "m.xlsx").unwrap();
        assert_eq!((mapping.get("tea").unwrap().buffer, mapping.get("cup").unwrap().buffer), (Some(3), None));
        let bad = workbook("SKUMapping", &[&["marketplace_sku", "seller_sku", "在庫バッファ"], &["tea", "T", "-1"]]);
        let refused = parse_workbook(&bad, "m.xlsx").unwrap_err();
        assert!(refused.to_string().contains("セル C2: 在庫バッファ「-1」は0以上の整数ではありません"), "{refused}");
    }

    #[test]
    fn a_good_sheet_maps_skus_with_multipliers() {
        let bytes = workbook(
            "SKUMapping",
            &[
                &["marketplace_sku", "seller_sku", "quantity"],
                &["tea-100", "JP-TEA-100", "1"],
                &[],
                &["tea-3pack", "JP-TEA-100", "3"],
                &["cup", "JP-CUP", ""],
            ],
        );
        let mapping = parse_workbook(&bytes, "master.xlsx").unwrap();
        assert_eq!(mapping.entries.len(), 3);
        assert_eq!(mapping.get("tea-3pack").unwrap().components[0].multiplier, 3);
        assert_eq!(
            mapping.get("cup").unwrap(),
            &MappedSku {
                components: vec![Component { seller_sku: SellerSku("JP-CUP".into()), multiplier: 1 }],
                buffer: None,
                stock_keys: vec![]
            }
        );
        assert_eq!(mapping.sha256.len(), 64);
    }

    #[test]
    fn rows_sharing_a_marketplace_sku_make_a_set_whose_buffer_and_keys_must_agree() {
        let header: &[&str] = &["marketplace_sku", "seller_sku", "quantity", "buffer", "yahoo_item_code"];
        let bytes = workbook(
            "SKUMapping",
            &[
                header,
                &["gift", "JP-TEA-100", "1", "", "gift-set"],
                &["tea", "JP-TEA-100", "1", "", ""],
                &["gift", "JP-CUP", "2", "1", ""],
            ],
        );
        let mapping = parse_workbook(&bytes, "m.xlsx").unwrap();
        let gift = mapping.get("gift").unwrap();
        let components: Vec<(&str, u32)> =
            gift.components.iter().map(|c| (c.seller_sku.0.as_str(), c.multiplier)).collect();
        assert_eq!(components, vec![("JP-TEA-100", 1), ("JP-CUP", 2)], "in the master's row order");
        assert_eq!(gift.buffer, Some(1), "given on one row of the set");
        assert_eq!(gift.stock_keys, vec![events::stock::StockKey::yahoo("gift-set").unwrap()]);
        assert_eq!(mapping.entries.len(), 2, "a set is one listing");

        let disagree = workbook(
            "SKUMapping",
            &[header, &["gift", "JP-TEA-100", "1", "", "gift-set"], &["gift", "JP-CUP", "2", "", "gift-other"]],
        );
        assert_eq!(
            parse_workbook(&disagree, "m.xlsx").unwrap_err().to_string(),
            "m.xlsx、SKUMapping シート、セル E3: セット「gift」の在庫連携のキーが 2 行目と違います。セットの各行は同じ値にするか、空欄にしてください"
        );
        let buffers = workbook("SKUMapping", &[header, &["gift", "A", "1", "2", ""], &["gift", "B", "1", "3", ""]]);
        assert!(matches!(
            parse_workbook(&buffers, "m.xlsx").unwrap_err(),
            SkuMasterError::SetRowsDisagree { column: "在庫バッファ", .. }
        ));
    }

    #[test]
    fn japanese_headers_are_understood() {
        let bytes = workbook("SKUMapping", &[&["モールSKU", "Amazon SKU", "数量"], &["tea-100", "JP-TEA-100", "2"]]);
        assert_eq!(parse_workbook(&bytes, "m.xlsx").unwrap().get("tea-100").unwrap().components[0].multiplier, 2);
    }

    #[test]
    fn broken_sheets_are_refused_naming_sheet_row_and_cell() {
        let no_sheet = parse_workbook(&workbook("Sheet1", &[&["a"]]), "m.xlsx").unwrap_err();
        assert_eq!(no_sheet.to_string(), "m.xlsx に SKUMapping シートがありません（シート: Sheet1）");
        let duplicate = parse_workbook(
            &workbook("SKUMapping", &[&["marketplace_sku", "seller_sku"], &["a", "A"], &["a", "B"], &["a", "A"]]),
            "m.xlsx",
        )
        .unwrap_err();
        assert_eq!(
            duplicate.to_string(),
            "m.xlsx、SKUMapping シート、セル A4: モールSKU「a」と出品者SKU「A」の組が重複しています（最初は 2 行目）"
        );
        let empty =
            parse_workbook(&workbook("SKUMapping", &[&["marketplace_sku", "seller_sku"], &["a", ""]]), "m.xlsx")
                .unwrap_err();
        assert_eq!(empty.to_string(), "m.xlsx、SKUMapping シート、セル B2: seller_sku が空です");
        let bad = parse_workbook(
            &workbook("SKUMapping", &[&["marketplace_sku", "seller_sku", "quantity"], &["a", "A", "two"]]),
            "m.xlsx",
        )
        .unwrap_err();
        assert_eq!(bad.to_string(), "m.xlsx、SKUMapping シート、セル C2: 「two」は1以上の整数ではありません");
        let zero = parse_workbook(
            &workbook("SKUMapping", &[&["marketplace_sku", "seller_sku", "quantity"], &["a", "A", "0"]]),
            "m.xlsx",
        )
        .unwrap_err();
        assert!(matches!(zero, SkuMasterError::BadNumber { .. }));
        let no_column = parse_workbook(&workbook("SKUMapping", &[&["sku", "seller_sku"]]), "m.xlsx").unwrap_err();
        assert!(no_column.to_string().contains("marketplace_sku がありません"), "{no_column}");
        let header_only =
            parse_workbook(&workbook("SKUMapping", &[&["marketplace_sku", "seller_sku"], &[]]), "m.xlsx").unwrap_err();
        assert_eq!(
            header_only.to_string(),
            "m.xlsx、SKUMapping シート: 見出しの下にマッピングの行がありません（行のないマスターではすべての注文が止まります）"
        );
        let garbage = parse_workbook(b"not a workbook", "m.xlsx").unwrap_err();
        assert!(matches!(garbage, SkuMasterError::Unreadable { .. }));
    }

    #[test]
    fn column_letters_follow_excel() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
    }
}
