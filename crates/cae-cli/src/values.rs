//! The command line's closed sets and checked values, parsed once at the edge (ripgrep's
//! low-level → high-level arguments): clap hands the subcommands typed values, never strings to
//! interpret later.
//!
//! - `DeviceChoice`: `--device` (`auto`, `cpu`, `cuda`, `cuda:N`, `metal`); parsed by `FromStr`
//!   rather than a `ValueEnum` because `cuda:N` carries a number.
//! - `Preset`: `--preset` and `--random-init`, one of `cae_core::PRESETS`.
//! - `Schedule`: `--schedule`.
//! - `--dataset` is a `cae_data::DatasetSource` (a name or a directory), parsed by cae-data.
use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result};
use cae_core::{CaeConfig, ReconstructionLoss, PRESETS};
use cae_train::LrSchedule;
use candle_core::Device;
use clap::builder::PossibleValue;
use clap::ValueEnum;

/// Where to compute (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// A CUDA GPU if there is one, else Metal, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA GPU number N (`cuda` is `cuda:0`).
    Cuda(Option<usize>),
    /// The Metal GPU.
    Metal,
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "cpu" => Self::Cpu,
            "metal" => Self::Metal,
            "cuda" => Self::Cuda(None),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => Self::Cuda(Some(n.parse().map_err(|_| {
                    format!("write the GPU number after `cuda:`, e.g. `cuda:0`, not `{s}`")
                })?)),
                None => return Err("use one of: auto, cpu, cuda, cuda:N, metal".into()),
            },
        })
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Metal => f.write_str("metal"),
            Self::Cuda(None) => f.write_str("cuda"),
            Self::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// The device, or why this build or machine cannot give it.
    pub fn open(self) -> Result<Device> {
        cae_core::device(&self.to_string()).with_context(|| format!("cannot use --device {self}"))
    }
}

/// A model preset of `cae_core::PRESETS` (`cae-cli presets` lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset(&'static str);

/// Every preset, in `PRESETS`' order.
const ALL_PRESETS: [Preset; PRESETS.len()] = {
    let mut all = [Preset(""); PRESETS.len()];
    let mut i = 0;
    while i < PRESETS.len() {
        all[i] = Preset(PRESETS[i].0);
        i += 1;
    }
    all
};

impl Default for Preset {
    fn default() -> Self {
        Self(cae_core::DEFAULT_PRESET)
    }
}

impl ValueEnum for Preset {
    fn value_variants<'a>() -> &'a [Self] {
        &ALL_PRESETS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0))
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Preset {
    /// The preset's name.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// The preset's model configuration.
    pub fn config(self) -> Result<CaeConfig> {
        Ok(CaeConfig::preset(self.0)?)
    }
}

/// The learning-rate schedule (`--schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Cosine decay to 1% of --lr by the last step.
    Cosine,
}

impl Schedule {
    /// The name of the kind of `schedule` (a cosine to any fraction is `cosine`).
    pub fn of(schedule: LrSchedule) -> Self {
        match schedule {
            LrSchedule::Constant => Self::Constant,
            LrSchedule::Cosine { .. } => Self::Cosine,
        }
    }

    /// The schedule `LrSchedule` means by this name.
    pub fn lr_schedule(self) -> LrSchedule {
        match self {
            Self::Constant => LrSchedule::Constant,
            Self::Cosine => LrSchedule::cosine(),
        }
    }

    /// The name of a saved schedule, for messages.
    pub fn describe(schedule: LrSchedule) -> String {
        match schedule {
            LrSchedule::Constant => "constant".into(),
            LrSchedule::Cosine { final_fraction } => {
                format!("cosine to {final_fraction} of the rate")
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Constant => "constant",
            Self::Cosine => "cosine",
        })
    }
}

/// The reconstruction loss (`--loss`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Loss {
    /// Binary cross-entropy on sigmoid outputs: inputs in [0, 1] (images).
    Bce,
    /// Mean squared error on linear outputs, every input feature standardised on the training
    /// split (real values; the standardisation is stored in the model file).
    Mse,
}

impl Loss {
    /// The library's loss of this name.
    pub fn reconstruction_loss(self) -> ReconstructionLoss {
        match self {
            Self::Bce => ReconstructionLoss::Bce,
            Self::Mse => ReconstructionLoss::Mse,
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reconstruction_loss().key())
    }
}

/// `text` with the library's default appended as clap writes its own (`[default: …]`), for flags
/// that stay unset when not given (so `train --resume` can tell them apart).
pub fn with_default(text: &str, default: impl fmt::Display) -> String {
    // Without the final full stop, as clap writes doc-comment help.
    format!(
        "{} [default: {default}]",
        text.strip_suffix('.').unwrap_or(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_round_trip_and_bad_ones_say_what_is_allowed() {
        for s in ["auto", "cpu", "metal", "cuda", "cuda:3"] {
            assert_eq!(s.parse::<DeviceChoice>().unwrap().to_string(), s);
        }
        assert!("gpu"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .contains("cuda:N"));
        assert!("cuda:x"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .contains("cuda:0"));
    }

    #[test]
    fn every_preset_is_a_value_and_builds() {
        assert_eq!(Preset::value_variants().len(), PRESETS.len());
        for preset in Preset::value_variants() {
            preset.config().unwrap();
        }
        assert_eq!(Preset::default().name(), cae_core::DEFAULT_PRESET);
    }

    #[test]
    fn schedules_are_the_library_s() {
        assert_eq!(Schedule::Constant.lr_schedule(), LrSchedule::Constant);
        assert_eq!(Schedule::Cosine.lr_schedule(), LrSchedule::cosine());
    }
}
