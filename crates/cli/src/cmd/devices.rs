//! `percept devices`: the audio input devices `percept listen --device` can use.

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per device.
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "mic")]
pub fn run(args: Args) -> anyhow::Result<()> {
    let devices = percept_listen::mic::input_devices()?;
    if devices.is_empty() {
        println!("no audio input devices found (percept listen --input FILE plays a file instead)");
        return Ok(());
    }
    for d in &devices {
        if args.json {
            let v = serde_json::json!({
                "name": d.name,
                "id": d.id,
                "default": d.is_default,
                "channels": d.channels,
                "sample_rates": d.rates,
            });
            println!("{v}");
            continue;
        }
        let rates: Vec<String> = d
            .rates
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    format!("{lo}")
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        let channels = match (d.channels.first(), d.channels.last()) {
            (Some(lo), Some(hi)) if d.channels.len() > 2 => format!("{lo}-{hi}"),
            _ => d
                .channels
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        println!(
            "{} {}  [{}]  channels {}  rates {} Hz",
            if d.is_default { "*" } else { " " },
            d.name,
            d.id,
            channels,
            rates.join(", ")
        );
    }
    if !args.json {
        println!("(* = default input)");
    }
    Ok(())
}

#[cfg(not(feature = "mic"))]
pub fn run(_args: Args) -> anyhow::Result<()> {
    println!("no audio input devices: this build has no microphone support (the `mic` feature)");
    Ok(())
}
