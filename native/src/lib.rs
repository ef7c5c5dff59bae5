//! `tickarchive_native`: the native fast paths of tickarchive, one module per concern.
//!
//! * `json`     a strict JSON reader (no escapes; anything uncertain is refused);
//! * `ilp`      QuestDB ILP protocol-v2 writing;
//! * `ilp_decode` ILP bodies back into rows (the API's live feed);
//! * `deribit`  Deribit ticker/book frames -> ILP rows (`encode_frame`, `fast_notification`);
//! * `columns`  the same frames -> Arrow column buffers of quotes/book_changes (replay);
//! * `frames`   replay's frame sources in bulk: replay-format lines, journal records;
//! * `journal`  the journal's record encoder;
//! * `wsframe`  WebSocket data-frame scanning;
//! * `sim`      the simulator's per-step engine;
//! * `tjz`      the journal archive's segment codec (structured transform of a segment);
//! * `tjz_columns` replay from a `.tjz` body: ticker/book frames straight into the columns.
//!
//! Every function is an exact twin of a Python reference path (tested byte for byte);
//! `TICKARCHIVE_NATIVE=0` switches them all off (`tickarchive/native_ext.py`).

use pyo3::prelude::*;

mod columns;
mod deribit;
mod frames;
mod ilp;
mod ilp_decode;
mod journal;
mod json;
mod sim;
mod tjz;
mod tjz_columns;
mod wsframe;

#[pymodule]
fn tickarchive_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    deribit::register(m)?;
    columns::register(m)?;
    frames::register(m)?;
    ilp_decode::register(m)?;
    journal::register(m)?;
    sim::register(m)?;
    tjz::register(m)?;
    tjz_columns::register(m)?;
    wsframe::register(m)?;
    Ok(())
}
