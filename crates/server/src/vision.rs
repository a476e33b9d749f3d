//! Images from a request. Decoding and the models run on the pipeline's vision thread
//! (`percept_pipeline::Service`), so a large image never stalls the async runtime.

/// Image bytes from a request, with the field they came from (for error messages).
#[derive(Debug, Clone)]
pub struct ImageInput {
    /// Shown to the model and in `percept.images[].source`, e.g. `image 1` or a file name.
    pub name: String,
    pub param: String,
    pub bytes: Vec<u8>,
}
