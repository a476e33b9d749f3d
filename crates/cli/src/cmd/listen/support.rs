//! The parts of `percept listen` around the session loop: the microphone source, notices
//! and the image kept in context.

use super::super::tag::{cache_dir, facts_only, load_clip};
use super::SourceThread;
use percept_core::{Untrusted, VisionContext};
use percept_listen::Notice;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[cfg(feature = "mic")]
pub(super) fn mic_source(
    name: Option<&str>,
    tx: percept_listen::CaptureTx,
    notices: crossbeam_channel::Sender<Notice>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(SourceThread, u32)> {
    let mic = percept_listen::mic::open_mic(name, tx, notices)?;
    let rate = mic.rate;
    eprintln!(
        "percept: listening on `{}` ({} Hz, {} channel(s)); Ctrl-C stops",
        mic.name, mic.rate, mic.channels
    );
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
) -> anyhow::Result<(SourceThread, u32)> {
    Err(percept_listen::ListenError::NoMic.into())
}

pub(super) fn describe_notice(n: &Notice) -> String {
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
pub(super) fn describe_image_file(
    path: &std::path::Path,
    clip_dir: Option<&std::path::Path>,
) -> anyhow::Result<Untrusted> {
    use percept_clip::labels::{parse_vocabulary, BUNDLED_LABELS};
    let img = percept_media::image::decode_image_file(path, &Default::default())?;
    let ctx: VisionContext = match load_clip(clip_dir)? {
        Some(clip) => {
            let labels = parse_vocabulary(BUNDLED_LABELS);
            let (set, _) = percept_clip::LabelSet::load_or_build(
                &clip,
                &labels,
                &percept_clip::TEMPLATES,
                &cache_dir(None),
            )?;
            percept_clip::VisionStage::new(clip, set, 5)
                .without_embedding()
                .describe(&img)?
        }
        None => {
            eprintln!("percept: no CLIP model; the image is described by its file facts only");
            facts_only(&img)
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string());
    Ok(Untrusted {
        label: format!("image {name}"),
        text: ctx.describe(),
    })
}
