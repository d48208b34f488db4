//! How a candidate of a pruning search trains, which both the search (`cbnn prune`) and one
//! candidate's training (`cbnn retrain`) follow: its epochs by default, whether it starts from
//! the baseline's weights, and the baseline's own training settings.
//!
//! Never: trains, chooses candidates, or writes a file.

use crate::error::{Error, Result, Setting};
use crate::model::IntModel;
use crate::train::arch::Arch;
use crate::train::{self, TrainConfig};

/// Epochs per perceptron candidate by default.
pub const DEFAULT_EPOCHS: usize = 30;
/// Epochs per candidate by default for networks with convolutions or pooling: each of their
/// epochs costs some 20 times a perceptron's, and 30 of them per candidate would take the
/// search of the MNIST preset past two hours; the 20-epoch MNIST preset is within 0.3 pp of
/// its best validation accuracy by epoch 10 (docs/results.md).
pub const DEFAULT_CONV_EPOCHS: usize = 10;
/// Epochs per convolutional candidate that starts from the baseline's weights (the default):
/// on Fashion-MNIST, planes [7, 6, 5] of the `conv` preset reach 90.34 % of validation
/// accuracy after 4 such epochs, 90.44 % after 10 from scratch (docs/results.md).
pub const DEFAULT_WARM_EPOCHS: usize = 4;

/// Whether the candidates of a search from `baseline` start from its weights: convolutional
/// baselines, unless `from_scratch`.
pub fn warm_starts(baseline: &IntModel, from_scratch: bool) -> bool {
    !from_scratch
        && baseline
            .arch()
            .parse::<crate::train::arch::Arch>()
            .is_ok_and(|a| a.is_conv())
}

/// Epochs per candidate when none are given: [`DEFAULT_EPOCHS`] for a perceptron,
/// [`DEFAULT_WARM_EPOCHS`] for warm-started candidates, [`DEFAULT_CONV_EPOCHS`] for anything
/// else (a convnet from scratch, a logic-mapped network).
pub fn default_epochs(baseline: &IntModel, from_scratch: bool) -> usize {
    if crate::train::arch::is_perceptron(&baseline.arch()) {
        DEFAULT_EPOCHS
    } else if warm_starts(baseline, from_scratch) {
        DEFAULT_WARM_EPOCHS
    } else {
        DEFAULT_CONV_EPOCHS
    }
}

/// The baseline's training settings, from its provenance: a bad value names the file and the
/// field.
pub fn baseline_settings(base: &IntModel, path: &std::path::Path) -> Result<TrainConfig> {
    let hyper = &base.provenance.hyper;
    let cfg: TrainConfig = if hyper.is_null() {
        // What `cbnn train` would use for the model's layers.
        let logic_mapped = base
            .arch()
            .parse::<Arch>()
            .is_ok_and(|a| a.is_logic_mapped());
        TrainConfig {
            augment: if logic_mapped { 0 } else { 1 },
            ..TrainConfig::default()
        }
    } else {
        serde_json::from_value(hyper.clone()).map_err(|e| {
            Error::bad_file(
                path,
                format!("\"provenance.hyper\" is not a training configuration ({e})"),
            )
        })?
    };
    train::validate_config(&cfg).map_err(|e| {
        Error::bad_file(
            path,
            format!(
                "\"provenance.hyper\" holds training settings that cannot be used: {}",
                e.render(|s| match s {
                    Setting::Hidden => "hidden",
                    Setting::Epochs => "epochs",
                    Setting::Batch => "batch",
                    Setting::Lr => "lr",
                    Setting::LrFinal => "lr_final",
                    other => other.name(),
                })
            ),
        )
    })?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::tests::random_model;
    use crate::model::InputShape;
    use crate::util::rng::Rng;

    /// Without `--epochs`, a perceptron's candidates train as long as before and a
    /// convolutional network's for fewer epochs, fewer still from the baseline's weights.
    #[test]
    fn candidates_train_for_the_default_epochs_of_their_kind() {
        let mut rng = Rng::new(5, 0);
        let input = InputShape {
            height: 6,
            width: 6,
            channels: 1,
        };
        let mlp = random_model(&mut rng, input, &[7, 6], &["d8", "d8"], 3);
        let conv = random_model(&mut rng, input, &[7, 6], &["c4k3s", "p2", "d8"], 3);
        let pooled = random_model(&mut rng, input, &[7], &["p2", "d8"], 3);
        for scratch in [false, true] {
            assert_eq!(default_epochs(&mlp, scratch), DEFAULT_EPOCHS);
            assert!(!warm_starts(&mlp, scratch));
        }
        for m in [&conv, &pooled] {
            assert_eq!(default_epochs(m, true), DEFAULT_CONV_EPOCHS);
            assert_eq!(default_epochs(m, false), DEFAULT_WARM_EPOCHS);
            assert!(warm_starts(m, false) && !warm_starts(m, true));
        }
    }
}
