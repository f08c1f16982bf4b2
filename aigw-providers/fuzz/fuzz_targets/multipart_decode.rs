//! The multipart/form-data reader (model routing for audio and image-edit forms) and
//! the `model` rewrite never panic on arbitrary bodies; a rewritten form reads back
//! with the new model.
#![no_main]

use aigw_core::api::multipart;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const CT: &str = "multipart/form-data; boundary=fz";

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let read = multipart::sniff(Some(CT), &body);
    if let Ok(out) = multipart::replace_model(Some(CT), data, "m-new") {
        // The rewrite only touches the model value: a form that read cleanly and had a
        // model reads back with the new one.
        if let Ok(info) = &read
            && info.model.is_some()
            && let Ok(again) = multipart::sniff(Some(CT), &out)
        {
            assert_eq!(again.model.as_deref(), Some("m-new"));
        }
    }
});
