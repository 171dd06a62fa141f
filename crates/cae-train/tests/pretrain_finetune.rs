//! Stacking, CAE+H training and fine-tuning end to end on small synthetic data: a fine-tuned
//! classifier (plain or with tangent propagation) separates a separable problem perfectly; a
//! stacked run writes a stack that is its two layers composed.
use std::sync::atomic::AtomicBool;

use cae_core::{
    Activation, Architecture, CaeConfig, ContractiveAutoencoder, HessianPenalty, LoadedModel,
    MlpConfig, PenaltyMethod,
};
use cae_train::{
    error_rate, files, finetune, loaded_from_varmap, train_stacked_layer, AdamParams, Dropout,
    FinetuneConfig, FinetuneOptimizer, LrSchedule, RunConfig, Silent, StackRunConfig, TangentProp,
    TrainConfig, Trainer, FINETUNE_KEY, LAYER_MODEL,
};
use candle_core::{DType, Device};

mod common;
use common::synthetic;

fn small_cae() -> CaeConfig {
    CaeConfig {
        height: 8,
        width: 8,
        architecture: Architecture::Mlp(MlpConfig {
            hidden: vec![],
            code_dim: 16,
            hidden_activation: Activation::Sigmoid,
            code_activation: Activation::Sigmoid,
            tied_weights: false,
        }),
        penalty: PenaltyMethod::Exact,
        init: cae_core::WeightInit::Pytorch,
        loss: cae_core::ReconstructionLoss::Bce,
        standardisation: None,
    }
}

fn random_cae(seed: u64) -> LoadedModel {
    let config = small_cae();
    let (_, varmap) =
        ContractiveAutoencoder::init(&config, seed, DType::F32, &Device::Cpu).unwrap();
    loaded_from_varmap(&config, &varmap).unwrap()
}

/// Plain fine-tuning (with Adam and with SGD), fine-tuning with dropout and weight decay, and the
/// Manifold Tangent Classifier (every tangent, and one random combination of them per step), as
/// the separable problems are tuned.
fn plain_and_mtc() -> [(&'static str, FinetuneConfig); 5] {
    let mtc = TangentProp {
        weight: 0.1,
        tangents: 3,
        iterations: 5,
        probes: None,
    };
    let mtc_probed = TangentProp {
        probes: Some(1),
        ..mtc
    };
    let dropout = Dropout {
        input: 0.1,
        code: 0.3,
        ..Dropout::default()
    };
    let (adam, sgd) = (
        (FinetuneOptimizer::Adam, 1e-2),
        (FinetuneOptimizer::Sgd { momentum: 0.9 }, 0.1),
    );
    let settings = [
        ("plain", None, Dropout::default(), 0.0, adam),
        ("sgd", None, Dropout::default(), 0.0, sgd),
        ("dropout", None, dropout, 1e-2, adam),
        ("mtc", Some(mtc), Dropout::default(), 0.0, adam),
        (
            "mtc-probed",
            Some(mtc_probed),
            Dropout::default(),
            0.0,
            adam,
        ),
    ];
    settings.map(
        |(name, tangent_prop, dropout, weight_decay, (optimizer, lr))| {
            let cfg = FinetuneConfig {
                max_epochs: 40,
                patience: 40,
                batch_size: 20,
                learning_rate: lr,
                optimizer,
                validation: 100,
                tangent_prop,
                dropout,
                adam: AdamParams {
                    weight_decay,
                    ..AdamParams::default()
                },
                ..FinetuneConfig::default()
            };
            (name, cfg)
        },
    )
}

#[test]
fn finetuning_separates_a_separable_problem() {
    let train = synthetic(600, 1);
    let test = synthetic(200, 2);
    let dir = tempfile::tempdir().unwrap();
    let base = random_cae(3);
    for (name, cfg) in plain_and_mtc() {
        let tangent_prop = cfg.tangent_prop;
        let out = dir.path().join(format!("{name}.safetensors"));
        let mut seen = 0;
        let summary =
            finetune(&base, &cfg, &train, &out, &Device::Cpu, &mut |_| seen += 1).unwrap();
        assert_eq!(seen, summary.epochs.len());
        assert_eq!(
            summary.best_validation_error,
            Some(0.0),
            "{name}: {summary:?}"
        );
        let loaded = cae_core::read_classifier(&out, &Device::Cpu).unwrap();
        let saved: FinetuneConfig = serde_json::from_str(&loaded.metadata[FINETUNE_KEY]).unwrap();
        assert_eq!(saved, cfg);
        let classifier = loaded.classifier(DType::F32, &Device::Cpu).unwrap();
        let test_error = error_rate(&classifier, &test, 0..test.len(), &Device::Cpu).unwrap();
        assert_eq!(test_error, 0.0, "{name}");
        if tangent_prop.is_some() {
            assert!(summary.epochs.iter().all(|e| e.tangent_penalty > 0.0));
        }
    }
    // The pretrained weights were copied, not changed.
    let again = random_cae(3);
    for (name, t) in &base.tensors {
        let diff = (t - &again.tensors[name])
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name} changed");
    }
}

/// `data`'s values as real numbers far outside [0, 1]: `1000·x − 300`.
fn rescaled(data: &cae_data::Dataset) -> cae_data::Dataset {
    let values = (0..data.len())
        .flat_map(|i| data.sample_f32(i))
        .map(|v| 1000.0 * v - 300.0)
        .collect();
    cae_data::Dataset::new(
        cae_data::Storage::F32(values),
        data.shape(),
        Some(data.labels().to_vec()),
    )
    .unwrap()
}

/// A squared-error model stores a standardisation: the classifier fine-tuned from it applies it to
/// data as read (and its tangents live in the standardised space), separating the rescaled
/// problem as well as the plain one.
#[test]
fn finetuning_a_standardising_model_separates_real_valued_data() {
    let (train, test) = (rescaled(&synthetic(600, 1)), rescaled(&synthetic(200, 2)));
    let config = CaeConfig {
        loss: cae_core::ReconstructionLoss::Mse,
        standardisation: Some(cae_train::fit_standardisation(&train).unwrap()),
        ..small_cae()
    };
    let (_, varmap) = ContractiveAutoencoder::init(&config, 3, DType::F32, &Device::Cpu).unwrap();
    let base = loaded_from_varmap(&config, &varmap).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, cfg) in plain_and_mtc() {
        let out = dir.path().join(format!("{name}.safetensors"));
        let summary = finetune(&base, &cfg, &train, &out, &Device::Cpu, &mut |_| {}).unwrap();
        assert_eq!(
            summary.best_validation_error,
            Some(0.0),
            "{name}: {summary:?}"
        );
        let loaded = cae_core::read_classifier(&out, &Device::Cpu).unwrap();
        assert_eq!(loaded.config.standardisation, config.standardisation);
        let classifier = loaded.classifier(DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            error_rate(&classifier, &test, 0..test.len(), &Device::Cpu).unwrap(),
            0.0,
            "{name}"
        );
        // The standardisation is applied inside: the same weights without it, given the
        // standardised data, score the same.
        let plain = cae_core::LoadedClassifier {
            config: CaeConfig {
                standardisation: None,
                ..loaded.config.clone()
            },
            classifier: loaded.classifier.clone(),
            tensors: loaded.tensors.clone(),
            metadata: loaded.metadata.clone(),
        }
        .classifier(DType::F32, &Device::Cpu)
        .unwrap();
        let raw = test.to_tensor(0..50, &Device::Cpu).unwrap();
        let standardised = cae_train::in_model_space(&config, &test).unwrap();
        let prepared = standardised.to_tensor(0..50, &Device::Cpu).unwrap();
        assert_eq!(
            classifier.logits(&raw).unwrap().to_vec2::<f32>().unwrap(),
            plain.logits(&prepared).unwrap().to_vec2::<f32>().unwrap(),
            "{name}"
        );
    }
}

/// Fine-tuning for 5 epochs, the settings [`finetuned_under`] varies.
fn five_epochs() -> FinetuneConfig {
    FinetuneConfig {
        max_epochs: 5,
        patience: 5,
        batch_size: 50,
        learning_rate: 1e-2,
        validation: 100,
        ..FinetuneConfig::default()
    }
}

/// The classifier's weights after fine-tuning `base` for 5 epochs under `schedule`, and the
/// configuration its file records.
fn finetuned_under(
    base: &LoadedModel,
    schedule: LrSchedule,
    dir: &std::path::Path,
) -> (Vec<f32>, FinetuneConfig) {
    let cfg = FinetuneConfig {
        lr_schedule: schedule,
        ..five_epochs()
    };
    finetuned_with(base, &cfg, &format!("{schedule:?}"), dir)
}

/// The classifier's weights after fine-tuning `base` under `cfg`, and the configuration its
/// file (`dir/name.safetensors`, which must not exist) records.
fn finetuned_with(
    base: &LoadedModel,
    cfg: &FinetuneConfig,
    name: &str,
    dir: &std::path::Path,
) -> (Vec<f32>, FinetuneConfig) {
    let out = dir.join(format!("{name}.safetensors"));
    finetune(
        base,
        cfg,
        &synthetic(400, 1),
        &out,
        &Device::Cpu,
        &mut |_| {},
    )
    .unwrap();
    let loaded = cae_core::read_classifier(&out, &Device::Cpu).unwrap();
    let saved = serde_json::from_str(&loaded.metadata[FINETUNE_KEY]).unwrap();
    let mut names: Vec<&String> = loaded.tensors.keys().collect();
    names.sort();
    let mut weights = Vec::new();
    for name in names {
        weights.extend(
            loaded.tensors[name]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
        );
    }
    (weights, saved)
}

#[test]
fn the_learning_rate_schedule_acts_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let base = random_cae(4);
    let (constant, saved) = finetuned_under(&base, LrSchedule::Constant, dir.path());
    assert_eq!(saved.lr_schedule, LrSchedule::Constant);
    // A cosine to 100% of the rate is the constant rate: the same weights, bit for bit.
    let flat = LrSchedule::Cosine {
        final_fraction: 1.0,
    };
    assert_eq!(finetuned_under(&base, flat, dir.path()).0, constant);
    let (cosine, saved) = finetuned_under(&base, LrSchedule::cosine(), dir.path());
    assert_eq!(saved.lr_schedule, LrSchedule::cosine());
    assert_eq!(cosine.len(), constant.len());
    assert_ne!(cosine, constant, "the decaying rate changed nothing");
    // A schedule whose rate would rise above the base rate is refused before any work.
    let rising = FinetuneConfig {
        lr_schedule: LrSchedule::Cosine {
            final_fraction: 2.0,
        },
        ..FinetuneConfig::default()
    };
    let err = rising.validate().unwrap_err().to_string();
    assert!(err.contains("cosine final fraction"), "{err}");
    // Classifier files written before the schedule was a setting read as a constant rate.
    let mut old = serde_json::to_value(FinetuneConfig::default()).unwrap();
    old.as_object_mut().unwrap().remove("lr_schedule").unwrap();
    let old: FinetuneConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old.lr_schedule, LrSchedule::Constant);
}

#[test]
fn the_optimizer_acts_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let base = random_cae(4);
    let (adam, saved) = finetuned_with(&base, &five_epochs(), "adam", dir.path());
    assert_eq!(saved.optimizer, FinetuneOptimizer::Adam);
    let with_sgd = |momentum| FinetuneConfig {
        optimizer: FinetuneOptimizer::Sgd { momentum },
        learning_rate: 0.1,
        ..five_epochs()
    };
    let (sgd, saved) = finetuned_with(&base, &with_sgd(0.9), "sgd", dir.path());
    assert_eq!(saved, with_sgd(0.9));
    assert_eq!(sgd.len(), adam.len());
    assert_ne!(sgd, adam, "SGD stepped as Adam does");
    let (plain, _) = finetuned_with(&base, &with_sgd(0.0), "plain-sgd", dir.path());
    assert_ne!(plain, sgd, "momentum changed nothing");
    // A momentum of 1 or more never decays and is refused before any work.
    let err = with_sgd(1.0).validate().unwrap_err().to_string();
    assert!(err.contains("momentum"), "{err}");
    // Classifier files written before the optimizer was a setting read as Adam.
    let mut old = serde_json::to_value(FinetuneConfig::default()).unwrap();
    old.as_object_mut().unwrap().remove("optimizer").unwrap();
    let old: FinetuneConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old.optimizer, FinetuneOptimizer::Adam);
}

#[test]
fn dropout_acts_repeats_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let base = random_cae(4);
    let (plain, saved) = finetuned_with(&base, &five_epochs(), "plain", dir.path());
    assert_eq!(saved.dropout, Dropout::default());
    let thinned = FinetuneConfig {
        dropout: Dropout {
            input: 0.2,
            code: 0.5,
            ..Dropout::default()
        },
        ..five_epochs()
    };
    let (dropped, saved) = finetuned_with(&base, &thinned, "dropout", dir.path());
    assert_eq!(saved.dropout, thinned.dropout);
    assert_eq!(dropped.len(), plain.len());
    assert_ne!(dropped, plain, "dropout changed nothing");
    // The masks come from the run's seed: the same run gives the same weights, bit for bit.
    assert_eq!(
        finetuned_with(&base, &thinned, "again", dir.path()).0,
        dropped
    );
    // Each layer's dropout acts on its own.
    for (name, dropout) in [("input", 0.2, 0.0), ("code", 0.0, 0.5)].map(|(n, input, code)| {
        (
            n,
            Dropout {
                input,
                code,
                ..Dropout::default()
            },
        )
    }) {
        let cfg = FinetuneConfig {
            dropout,
            ..five_epochs()
        };
        let (w, _) = finetuned_with(&base, &cfg, name, dir.path());
        assert!(w != plain && w != dropped, "{name} dropout");
    }
    // Probabilities outside [0, 1) are refused before any work.
    let bad = FinetuneConfig {
        dropout: Dropout {
            code: 1.0,
            ..Dropout::default()
        },
        ..five_epochs()
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("code dropout probability"), "{err}");
    // Classifier files written before dropout was a setting read as no dropout.
    let mut old = serde_json::to_value(FinetuneConfig::default()).unwrap();
    old.as_object_mut().unwrap().remove("dropout").unwrap();
    let old: FinetuneConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old.dropout, Dropout::default());
}

#[test]
fn hidden_dropout_thins_only_a_stacks_lower_layers() {
    let dir = tempfile::tempdir().unwrap();
    let hidden_only = FinetuneConfig {
        dropout: Dropout {
            hidden: 0.5,
            ..Dropout::default()
        },
        ..five_epochs()
    };
    // A one-layer encoder has no layer below its code: nothing is dropped, bit for bit.
    let one_layer = random_cae(4);
    let (plain, _) = finetuned_with(&one_layer, &five_epochs(), "one-plain", dir.path());
    let (same, saved) = finetuned_with(&one_layer, &hidden_only, "one-hidden", dir.path());
    assert_eq!(same, plain);
    assert_eq!(saved.dropout, hidden_only.dropout);
    // A two-layer encoder's lower layer is thinned, repeatably from the seed.
    let mut config = small_cae();
    if let Architecture::Mlp(m) = &mut config.architecture {
        m.hidden = vec![12];
    }
    let (_, varmap) = ContractiveAutoencoder::init(&config, 5, DType::F32, &Device::Cpu).unwrap();
    let deep = loaded_from_varmap(&config, &varmap).unwrap();
    let (plain, _) = finetuned_with(&deep, &five_epochs(), "deep-plain", dir.path());
    let (thinned, _) = finetuned_with(&deep, &hidden_only, "deep-hidden", dir.path());
    assert_ne!(thinned, plain, "hidden dropout changed nothing");
    assert_eq!(
        finetuned_with(&deep, &hidden_only, "deep-again", dir.path()).0,
        thinned
    );
    // Classifier files written before hidden dropout was a setting read as none.
    let mut old = serde_json::to_value(hidden_only).unwrap();
    old["dropout"]
        .as_object_mut()
        .unwrap()
        .remove("hidden")
        .unwrap();
    let old: FinetuneConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old.dropout.hidden, 0.0);
}

#[test]
fn a_validation_split_larger_than_the_data_is_refused() {
    let cfg = FinetuneConfig {
        validation: 600,
        ..FinetuneConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let err = finetune(
        &random_cae(1),
        &cfg,
        &synthetic(600, 1),
        &dir.path().join("c"),
        &Device::Cpu,
        &mut |_| {},
    );
    assert!(err.unwrap_err().to_string().contains("validation"));
}

#[test]
fn a_stacked_run_writes_the_composed_model() {
    let train = synthetic(300, 4);
    let test = synthetic(100, 5);
    let base = random_cae(6);
    let train_cfg = TrainConfig {
        epochs: 2,
        batch_size: 50,
        learning_rate: 1e-2,
        hessian: Some(HessianPenalty {
            gamma: 0.1,
            sigma: 0.1,
            copies: 2,
        }),
        ..TrainConfig::default()
    };
    let run = StackRunConfig::new("random", &base.config, 8, train_cfg, "strokes").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("stack");
    let train_it = || {
        let stop = AtomicBool::new(false);
        train_stacked_layer(
            &base,
            &run,
            &train,
            &test,
            &run_dir,
            &Device::Cpu,
            &mut Silent,
            &stop,
        )
    };
    let stack = train_it().unwrap();
    assert_eq!(stack.config.code_dim().unwrap(), 8);
    let stacked = cae_core::read_model(&run_dir.join(files::LAST_MODEL), &Device::Cpu).unwrap();
    let Architecture::Mlp(m) = &stacked.config.architecture else {
        panic!()
    };
    assert_eq!((m.hidden.as_slice(), m.code_dim), (&[16][..], 8));
    let layer =
        ContractiveAutoencoder::load(&run_dir.join(LAYER_MODEL), DType::F32, &Device::Cpu).unwrap();
    let below = base.model(DType::F32, &Device::Cpu).unwrap();
    let stacked = stacked.model(DType::F32, &Device::Cpu).unwrap();
    let x = test.to_tensor(0..10, &Device::Cpu).unwrap();
    let composed = layer.encode(&below.encode(&x).unwrap()).unwrap();
    let diff = (stacked.encode(&x).unwrap() - composed)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    let log = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
    // The directory is never reused.
    let again = train_it();
    assert!(again.unwrap_err().to_string().contains("already has files"));
}

/// CAE+H through the ordinary trainer: the configuration is saved with the run and the penalty
/// reported is larger than the first-order term alone.
#[test]
fn the_trainer_trains_cae_h() {
    let data = synthetic(200, 7);
    let dir = tempfile::tempdir().unwrap();
    let mut run = RunConfig {
        model: small_cae(),
        train: TrainConfig {
            epochs: 1,
            batch_size: 50,
            ..TrainConfig::default()
        },
        dataset: "strokes".into(),
        data: Default::default(),
    };
    let mut trainer = Trainer::new(run.clone(), &dir.path().join("plain"), &Device::Cpu).unwrap();
    let plain = trainer
        .fit(&data, &data, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    run.train.hessian = Some(HessianPenalty {
        gamma: 1.0,
        sigma: 0.5,
        copies: 2,
    });
    let mut trainer = Trainer::new(run.clone(), &dir.path().join("h"), &Device::Cpu).unwrap();
    let h = trainer
        .fit(&data, &data, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    let saved: RunConfig = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("h").join(files::CONFIG)).unwrap(),
    )
    .unwrap();
    assert_eq!(saved, run);
    let (plain, h) = (plain.last.unwrap(), h.last.unwrap());
    assert!(h.train_penalty > plain.train_penalty, "{h:?} vs {plain:?}");
}

/// Without a validation split every epoch runs (nothing to stop on) and the file holds the last
/// one: at a constant rate, 3 epochs give the same weights twice and other weights than the
/// first 2 alone (the same seed draws the same batches); the classifier still separates the
/// separable problem.
#[test]
fn without_a_split_every_epoch_runs_and_the_last_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let base = random_cae(5);
    let no_split = |max_epochs| FinetuneConfig {
        max_epochs,
        patience: 1,
        validation: 0,
        ..five_epochs()
    };
    let out = dir.path().join("all.safetensors");
    let train = synthetic(400, 1);
    let summary = finetune(&base, &no_split(3), &train, &out, &Device::Cpu, &mut |_| {}).unwrap();
    assert_eq!((summary.best_epoch, summary.epochs.len()), (3, 3));
    assert_eq!(summary.best_validation_error, None);
    assert!(summary.epochs.iter().all(|e| e.validation_error.is_none()));
    let classifier = cae_core::read_classifier(&out, &Device::Cpu)
        .unwrap()
        .classifier(DType::F32, &Device::Cpu)
        .unwrap();
    let test = synthetic(200, 2);
    assert_eq!(
        error_rate(&classifier, &test, 0..test.len(), &Device::Cpu).unwrap(),
        0.0
    );
    let (three, saved) = finetuned_with(&base, &no_split(3), "three", dir.path());
    assert_eq!(saved.validation, 0);
    assert_eq!(
        finetuned_with(&base, &no_split(3), "again", dir.path()).0,
        three
    );
    assert_ne!(
        finetuned_with(&base, &no_split(2), "two", dir.path()).0,
        three
    );
}
