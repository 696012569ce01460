# Stage 3: one parsing model per experiment, its predictions on the evaluation split, and the trivial baseline.


rule train_config:
    output:
        RESULTS / "train" / "{experiment}.yaml",
    params:
        settings=lambda wildcards: train_settings(wildcards.experiment),
    log:
        LOGS / "train_config" / "{experiment}.log",
    run:
        write_yaml(output[0], params.settings)
        Path(log[0]).write_text(f"wrote {output[0]}\n", encoding="utf-8")


rule train:
    input:
        config=RESULTS / "train" / "{experiment}.yaml",
        features=FEATURES,
        labels=[annotation(name) for name in ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_eval_audio.csv", "AVVP_eval_visual.csv")],
    output:
        checkpoint=RESULTS / "train" / "{experiment}" / "best.pt",
    params:
        output_dir=subpath(output.checkpoint, parent=True),
    log:
        LOGS / "train" / "{experiment}.log",
    benchmark:
        BENCHMARKS / "train" / "{experiment}.tsv"
    threads: 4
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=180,
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} avvp train --config {input.config:q} --features {input.features:q}"
        " --output-dir {params.output_dir:q} > {log} 2>&1"


rule predict:
    input:
        checkpoint=RESULTS / "train" / "{experiment}" / "best.pt",
        features=FEATURES,
        split=eval_split_csv(),
    output:
        audio=RESULTS / "predict" / "{experiment}" / "pred_audio.csv",
        visual=RESULTS / "predict" / "{experiment}" / "pred_visual.csv",
        probabilities=RESULTS / "predict" / "{experiment}" / "probabilities.h5",
    params:
        output_dir=subpath(output.audio, parent=True),
    log:
        LOGS / "predict" / "{experiment}.log",
    benchmark:
        BENCHMARKS / "predict" / "{experiment}.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "OMP_NUM_THREADS={threads} avvp predict --checkpoint {input.checkpoint:q} --features {input.features:q}"
        " --split-csv {input.split:q} --output-dir {params.output_dir:q} > {log} 2>&1"


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
        CONDA_ENV
    shell:
        "avvp weak-baseline --split-csv {input:q} --output-dir {params.output_dir:q} > {log} 2>&1"
