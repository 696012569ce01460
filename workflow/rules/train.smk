# Stage 3: one parsing model per experiment, its predictions on the evaluation split, and the trivial baseline.


rule train_config:
    input:
        base_train_config,
    output:
        RESULTS / "train" / "{experiment}.yaml",
    params:
        training=canonical(config["training"]),
        experiment=lambda wildcards: canonical(config["experiments"][wildcards.experiment]),
    log:
        LOGS / "train_config" / "{experiment}.log",
    run:
        write_yaml(output[0], train_settings(wildcards.experiment, input))
        Path(log[0]).write_text(f"wrote {output[0]}\n", encoding="utf-8")


rule train:
    input:
        config=RESULTS / "train" / "{experiment}.yaml",
        encoder=lambda wildcards: pretrained_encoder(wildcards.experiment),
        noise_ratios=lambda wildcards: noise_ratios(wildcards.experiment),
        refined_labels=lambda wildcards: refined_labels(wildcards.experiment),
        pseudo_labels=lambda wildcards: experiment_pseudo_labels(wildcards.experiment),
        features=lambda wildcards: model_features(wildcards.experiment),
        splits=[available_split("train"), available_split("val")],
        labels=[annotation(GT_AUDIO), annotation(GT_VISUAL)],
    output:
        checkpoint=RESULTS / "train" / "{experiment}" / "best.pt",
        last=RESULTS / "train" / "{experiment}" / "last.pt",
        history=RESULTS / "train" / "{experiment}" / "history.jsonl",
        val_metrics=RESULTS / "train" / "{experiment}" / "val_metrics.json",
        attention=RESULTS / "train" / "{experiment}" / "attention.json",
    params:
        threads=stage_threads("train"),
        output_dir=subpath(output.checkpoint, parent=True),
    log:
        LOGS / "train" / "{experiment}.log",
    benchmark:
        BENCHMARKS / "train" / "{experiment}.tsv"
    threads: stage_threads("train")
    resources:
        **stage_resources("train"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "OMP_NUM_THREADS={params.threads} avvp train --config {input.config:q} --features {input.features:q}"
        " --threads {params.threads} --output-dir {params.output_dir:q} > {log} 2>&1"


rule predict:
    input:
        checkpoint=RESULTS / "train" / "{experiment}" / "best.pt",
        features=lambda wildcards: model_features(wildcards.experiment),
        split=eval_split_csv(),
    output:
        audio=RESULTS / "predict" / "{experiment}" / "pred_audio.csv",
        visual=RESULTS / "predict" / "{experiment}" / "pred_visual.csv",
        probabilities=RESULTS / "predict" / "{experiment}" / "probabilities.h5",
        attention=RESULTS / "predict" / "{experiment}" / "attention.json",
    params:
        threads=stage_threads("predict"),
        output_dir=subpath(output.audio, parent=True),
    log:
        LOGS / "predict" / "{experiment}.log",
    benchmark:
        BENCHMARKS / "predict" / "{experiment}.tsv"
    threads: stage_threads("predict")
    resources:
        **stage_resources("predict"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "OMP_NUM_THREADS={params.threads} avvp predict --checkpoint {input.checkpoint:q} --features {input.features:q}"
        " --threads {params.threads} --split-csv {input.split:q} --output-dir {params.output_dir:q} > {log} 2>&1"


rule weak_baseline:
    input:
        eval_split_csv(),
    output:
        audio=RESULTS / "predict" / "weak_baseline" / "pred_audio.csv",
        visual=RESULTS / "predict" / "weak_baseline" / "pred_visual.csv",
    params:
        output_dir=subpath(output.audio, parent=True),
    log:
        LOGS / "predict" / "weak_baseline.log",
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp weak-baseline --split-csv {input:q} --output-dir {params.output_dir:q} > {log} 2>&1"
