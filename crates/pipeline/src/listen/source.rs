//! The parts of the listen session around its loop: the microphone source, notices and the
//! image kept in context.

use super::{NoticeFn, SourceThread};
use crate::def::PipelineDef;
use crate::error::{PipelineError, Result};
use crate::load::{load_vision_stages, LabelChoice};
use crate::prompt::describe_image;
use crate::service::VisionWorker;
use percept_core::Untrusted;
use percept_listen::Notice;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[cfg(feature = "mic")]
pub(super) fn mic_source(
    name: Option<&str>,
    tx: percept_listen::CaptureTx,
    notices: crossbeam_channel::Sender<Notice>,
    stop: Arc<AtomicBool>,
    notice: &NoticeFn,
) -> Result<(SourceThread, u32)> {
    let mic = percept_listen::mic::open_mic(name, tx, notices)?;
    let rate = mic.rate;
    notice(&format!(
        "listening on `{}` ({} Hz, {} channel(s)); Ctrl-C stops",
        mic.name, mic.rate, mic.channels
    ));
    // The stream lives until Ctrl-C or the end of the session; dropping it ends capture.
    let t = std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        drop(mic);
        Ok(())
    });
    Ok((t, rate))
}

#[cfg(not(feature = "mic"))]
pub(super) fn mic_source(
    _name: Option<&str>,
    _tx: percept_listen::CaptureTx,
    _notices: crossbeam_channel::Sender<Notice>,
    _stop: Arc<AtomicBool>,
    _notice: &NoticeFn,
) -> Result<(SourceThread, u32)> {
    Err(percept_listen::ListenError::NoMic.into())
}

pub fn describe_notice(n: &Notice) -> String {
    match n {
        Notice::Dropped {
            index,
            start_s,
            end_s,
        } => format!(
            "falling behind: dropped utterance {index} ({start_s:.1}-{end_s:.1} s) unanswered"
        ),
        Notice::Overrun {
            at_s,
            lost_samples,
            discarded_utterance,
        } => format!(
            "capture overrun at {at_s:.1} s: {lost_samples} samples lost{}",
            if *discarded_utterance {
                ", the utterance in progress was dropped"
            } else {
                ""
            }
        ),
        Notice::Device(m) => format!("audio device: {m}"),
    }
}

/// The image that stays in context: CLIP tags when the model is there, file facts always.
/// Returns its data part and the notices for the person.
pub fn describe_image_file(
    def: &PipelineDef,
    path: &std::path::Path,
) -> Result<(Untrusted, Vec<String>)> {
    let img = percept_media::image::decode_image_file(path, &Default::default())?;
    let stages = load_vision_stages(def, &LabelChoice::default())?;
    let stage = stages.vision.map(|v| v.stage.without_embedding());
    let worker = VisionWorker::new(stage, stages.classifier, Default::default())
        .with_ocr(stages.ocr)
        .with_faces(stages.faces);
    let ctx = worker
        .see(&img)
        .map_err(|e| PipelineError::invalid(format!("{}: {e}", path.display())))?;
    Ok((describe_image(&ctx), stages.notices))
}
