# Stage 2d: MA's label refinement (Wu and Yang, CVPR 2021), per label refiner some experiment names: a base
# model trained on the weak labels, then the labels its exchanged-track predictions do not support, removed
# per modality. The retraining on the refined labels is rule train.


rule label_refiner_config:
    input:
        stage_config("label_refiners", "refiner"),
    output:
        REFINEMENT / "{refiner}.yaml",
    params:
        training=canonical(config["training"]),
        refiner=lambda wildcards: canonical(config["label_refiners"][wildcards.refiner]),
    log:
        LOGS / "label_refiner_config" / "{refiner}.log",
    run:
        write_yaml(output[0], stage_settings("label_refiners", wildcards.refiner, input))
        Path(log[0]).write_text(f"wrote {output[0]}\n", encoding="utf-8")


use rule train as train_label_refiner with:
    input:
        config=REFINEMENT / "{refiner}.yaml",
        features=MODEL_FEATURES,
        splits=[available_split("train"), available_split("val")],
        labels=[annotation(GT_AUDIO), annotation(GT_VISUAL)],
    output:
        checkpoint=REFINEMENT / "{refiner}" / "best.pt",
        last=REFINEMENT / "{refiner}" / "last.pt",
        history=REFINEMENT / "{refiner}" / "history.jsonl",
        val_metrics=REFINEMENT / "{refiner}" / "val_metrics.json",
        attention=REFINEMENT / "{refiner}" / "attention.json",
    log:
        LOGS / "train_label_refiner" / "{refiner}.log",
    benchmark:
        BENCHMARKS / "train_label_refiner" / "{refiner}.tsv"


rule refine_labels:
    input:
        checkpoint=REFINEMENT / "{refiner}" / "best.pt",
        features=MODEL_FEATURES,
        split=available_split("train"),
    output:
        refined_label_file("{refiner}"),
    params:
        threads=stage_threads("predict"),
        options=stage_options("label_refiners", "refiner", ("threshold", "seed")),
    log:
        LOGS / "refine_labels" / "{refiner}.log",
    benchmark:
        BENCHMARKS / "refine_labels" / "{refiner}.tsv"
    threads: stage_threads("predict")
    resources:
        **stage_resources("predict"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "OMP_NUM_THREADS={params.threads} avvp refine-labels --checkpoint {input.checkpoint:q} --features {input.features:q}"
        " --split-csv {input.split:q} --output {output:q} --threads {params.threads} {params.options:q} > {log} 2>&1"
