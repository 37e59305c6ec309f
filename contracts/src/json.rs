//! JSON text of a body, written into a buffer that starts at the size most bodies fit.
//!
//! `serde_json::to_vec` starts from an empty buffer and grows it by doubling: a link's
//! 201 (about 480 bytes) or a webhook body (about 350) went through seven reallocations and
//! copies on their way. Starting at [`ROOM`] bytes, most bodies are written without one and
//! the largest grow once or twice.

use serde::Serialize;

/// Bytes a body's buffer starts with.
pub const ROOM: usize = 512;

/// `value` as compact JSON text, as `serde_json::to_vec` writes it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(ROOM);
    serde_json::to_writer(&mut bytes, value)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_json_writes_at_any_size() {
        for length in [0, 10, ROOM, 3 * ROOM] {
            let value = serde_json::json!({"text": "x".repeat(length), "n": [1, 2.5, null]});
            let written = to_vec(&value).expect("serializes");
            assert_eq!(written, serde_json::to_vec(&value).expect("serializes"));
        }
    }
}
