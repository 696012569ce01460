# Teachers (config teachers.<name>): VALOR's CLIP and CLAP features per shard, merged, and their segment-level
# pseudo-labels with their agreement with the dense val/test labels; or VALOR's released folders imported.


rule extract_teacher_features:
    input:
        DATA / "manifests" / "{shard}.videos.txt",
    output:
        features=DATA / "teachers" / "{teacher}" / "shards" / "{shard}.h5",
        failures=DATA / "teachers" / "{teacher}" / "shards" / "{shard}.failures.tsv",
    params:
        kinds=TEACHER_KINDS,
        models=teacher_extract_options,
        threads=stage_threads("extract"),
    log:
        LOGS / "teachers" / "{teacher}" / "extract" / "{shard}.log",
    benchmark:
        BENCHMARKS / "teachers" / "{teacher}" / "extract" / "{shard}.tsv"
    threads: stage_threads("extract")
    resources:
        **stage_resources("extract"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp extract --videos {input:q} --kinds {params.kinds:q} --cores {params.threads} {params.models:q}"
        " --output {output.features:q} --device auto --no-progress > {log} 2>&1"


rule teacher_features:
    input:
        teacher_store_rule_input,
    output:
        DATA / "teachers" / "{teacher}" / "features.h5",
    params:
        command=teacher_store_command,
    log:
        LOGS / "teachers" / "{teacher}" / "features.log",
    benchmark:
        BENCHMARKS / "teachers" / "{teacher}" / "features.tsv"
    threads: stage_threads("features")
    resources:
        **stage_resources("features"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp {params.command:q} > {log} 2>&1"


rule pseudo_labels:
    input:
        features=pseudo_label_inputs,
        labels=annotation(FULL_DATASET),
        annotations=[annotation(name) for name in (*SPLIT_FILES.values(), GT_AUDIO, GT_VISUAL)],
    output:
        labels=RESULTS / "teachers" / "{teacher}" / "pseudo_labels.h5",
        agreement=RESULTS / "teachers" / "{teacher}" / "agreement.json",
    params:
        source=pseudo_label_options,
        annotations=annotations_dir(),
    log:
        LOGS / "teachers" / "{teacher}" / "pseudo_labels.log",
    benchmark:
        BENCHMARKS / "teachers" / "{teacher}" / "pseudo_labels.tsv"
    threads: stage_threads("features")
    resources:
        **stage_resources("features"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp pseudo-labels {params.source:q} --labels {input.labels:q} --annotations-dir {params.annotations:q}"
        " --output {output.labels:q} --agreement {output.agreement:q} --no-progress > {log} 2>&1"
