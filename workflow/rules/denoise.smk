# Stage 2c: JoMoLD's first two stages (Cheng et al., ECCV 2022), per noise estimator some experiment names:
# the estimator (network F without cross-modal attention, trained on the weak labels), then the per-class
# noise ratios of its predictions on the training split. The denoised training is rule train.


rule noise_estimator_config:
    input:
        stage_config("noise_estimators", "estimator"),
    output:
        DENOISING / "{estimator}.yaml",
    params:
        training=canonical(config["training"]),
        estimator=lambda wildcards: canonical(config["noise_estimators"][wildcards.estimator]),
    log:
        LOGS / "noise_estimator_config" / "{estimator}.log",
    run:
        write_yaml(output[0], stage_settings("noise_estimators", wildcards.estimator, input))
        Path(log[0]).write_text(f"wrote {output[0]}\n", encoding="utf-8")


use rule train as train_noise_estimator with:
    input:
        config=DENOISING / "{estimator}.yaml",
        features=MODEL_FEATURES,
        splits=[available_split("train"), available_split("val")],
        labels=[annotation(GT_AUDIO), annotation(GT_VISUAL)],
    output:
        checkpoint=DENOISING / "{estimator}" / "best.pt",
        last=DENOISING / "{estimator}" / "last.pt",
        history=DENOISING / "{estimator}" / "history.jsonl",
        val_metrics=DENOISING / "{estimator}" / "val_metrics.json",
        attention=DENOISING / "{estimator}" / "attention.json",
    log:
        LOGS / "train_noise_estimator" / "{estimator}.log",
    benchmark:
        BENCHMARKS / "train_noise_estimator" / "{estimator}.tsv"


rule estimate_noise:
    input:
        checkpoint=DENOISING / "{estimator}" / "best.pt",
        features=MODEL_FEATURES,
        split=available_split("train"),
    output:
        noise_ratio_file("{estimator}"),
    params:
        threads=stage_threads("predict"),
        thresholds=stage_options("noise_estimators", "estimator", ("audio_threshold", "visual_threshold")),
    log:
        LOGS / "estimate_noise" / "{estimator}.log",
    benchmark:
        BENCHMARKS / "estimate_noise" / "{estimator}.tsv"
    threads: stage_threads("predict")
    resources:
        **stage_resources("predict"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "OMP_NUM_THREADS={params.threads} avvp estimate-noise --checkpoint {input.checkpoint:q} --features {input.features:q}"
        " --split-csv {input.split:q} --output {output:q} --threads {params.threads} {params.thresholds:q} > {log} 2>&1"
