//! The few EXIF fields worth reporting: date, camera, orientation and GPS.

use exif::{In, Tag, Value};

/// EXIF UserComment: an 8-byte character-code prefix, then the text.
fn user_comment(bytes: &[u8]) -> Option<String> {
    let (code, text) = (bytes.get(..8)?, bytes.get(8..)?);
    let s = if code.starts_with(b"UNICODE") {
        let units: Vec<u16> = text
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(text).to_string()
    };
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

/// Parses raw EXIF (a TIFF structure, as decoders hand it out) into fact pairs.
/// Unreadable EXIF yields `None`: it never makes the image itself fail.
pub(crate) fn parse(raw: Vec<u8>, gps_coordinates: bool) -> Option<Vec<(String, String)>> {
    let exif = exif::Reader::new().read_raw(raw).ok()?;
    let ascii = |tag: Tag| -> Option<String> {
        let field = exif.get_field(tag, In::PRIMARY)?;
        match &field.value {
            Value::Ascii(parts) => {
                let s: Vec<String> = parts
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect();
                (!s.is_empty()).then(|| s.join(" "))
            }
            _ => None,
        }
    };

    let mut out = Vec::new();
    if let Some(date) = ascii(Tag::DateTimeOriginal).or_else(|| ascii(Tag::DateTime)) {
        out.push(("date".to_string(), date));
    }
    let camera = match (ascii(Tag::Make), ascii(Tag::Model)) {
        // Many models already start with the make ("Canon Canon EOS 5D" otherwise).
        (Some(make), Some(model)) if model.starts_with(&make) => Some(model),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (one, other) => one.or(other),
    };
    if let Some(camera) = camera {
        out.push(("camera".to_string(), camera));
    }
    // Free text written by cameras and editors: useful facts, and untrusted input that the
    // LLM stage fences as data.
    if let Some(d) = ascii(Tag::ImageDescription) {
        out.push(("description".to_string(), d));
    }
    if let Some(c) = exif
        .get_field(Tag::UserComment, In::PRIMARY)
        .and_then(|f| match &f.value {
            Value::Undefined(bytes, _) => user_comment(bytes),
            _ => None,
        })
    {
        out.push(("comment".to_string(), c));
    }
    if let Some(o) = exif
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
    {
        out.push(("orientation".to_string(), orientation_name(o).to_string()));
    }
    let lat = exif.get_field(Tag::GPSLatitude, In::PRIMARY);
    let lon = exif.get_field(Tag::GPSLongitude, In::PRIMARY);
    if let (Some(lat), Some(lon)) = (lat, lon) {
        let value = if gps_coordinates {
            match (degrees(&lat.value), degrees(&lon.value)) {
                (Some(la), Some(lo)) => {
                    let la = signed(la, ascii(Tag::GPSLatitudeRef), "S");
                    let lo = signed(lo, ascii(Tag::GPSLongitudeRef), "W");
                    format!("{la:.6}, {lo:.6}")
                }
                _ => "present (unreadable)".to_string(),
            }
        } else {
            "present".to_string()
        };
        out.push(("gps".to_string(), value));
    }
    Some(out)
}

fn orientation_name(o: u32) -> &'static str {
    match o {
        1 => "normal",
        2 => "mirrored",
        3 => "rotated 180",
        4 => "flipped vertically",
        5 => "mirrored, rotated 270",
        6 => "rotated 90",
        7 => "mirrored, rotated 90",
        8 => "rotated 270",
        _ => "unknown",
    }
}

/// Degrees, minutes, seconds as three rationals.
fn degrees(v: &Value) -> Option<f64> {
    match v {
        Value::Rational(r) if r.len() >= 3 && r.iter().all(|x| x.denom != 0) => {
            Some(r[0].to_f64() + r[1].to_f64() / 60.0 + r[2].to_f64() / 3600.0)
        }
        _ => None,
    }
}

fn signed(v: f64, reference: Option<String>, negative: &str) -> f64 {
    match reference {
        Some(r) if r.eq_ignore_ascii_case(negative) => -v,
        _ => v,
    }
}
