# Stage 2: the feature store. Extracted shard by shard and merged, or imported from released features.

if config["features"]["source"] == "extract":

    rule extract:
        input:
            DATA / "manifests" / "{shard}.videos.txt",
        output:
            features=DATA / "features" / "shards" / "{shard}.h5",
            failures=DATA / "features" / "shards" / "{shard}.failures.tsv",
        params:
            kinds=",".join(config["features"]["kinds"]),
            weights=config["features"]["weights"],
            frame_size=frame_size_options,
            threads=stage_threads("extract"),
        log:
            LOGS / "extract" / "{shard}.log",
        benchmark:
            BENCHMARKS / "extract" / "{shard}.tsv"
        threads: stage_threads("extract")
        resources:
            **stage_resources("extract"),
        conda:
            "../envs/avvp.yaml"
        shell:
            "avvp extract --videos {input:q} --kinds {params.kinds:q} --cores {params.threads}"
            " --output {output.features:q} --weights {params.weights:q} --device auto {params.frame_size:q} --no-progress > {log} 2>&1"

    rule merge_features:
        input:
            expand(DATA / "features" / "shards" / "{shard}.h5", shard=SHARDS),
        output:
            FEATURES,
        params:
            dtype=config["features"]["dtype"],
        log:
            LOGS / "merge_features.log",
        benchmark:
            BENCHMARKS / "merge_features.tsv"
        threads: stage_threads("features")
        resources:
            **stage_resources("features"),
        conda:
            "../envs/avvp.yaml"
        shell:
            "avvp merge-features {input:q} --output {output:q} --dtype {params.dtype} > {log} 2>&1"

else:

    rule import_features:
        input:
            annotation(FULL_DATASET),
        output:
            FEATURES,
        params:
            folders=import_options,
        log:
            LOGS / "import_features.log",
        benchmark:
            BENCHMARKS / "import_features.tsv"
        threads: stage_threads("features")
        resources:
            **stage_resources("features"),
        conda:
            "../envs/avvp.yaml"
        shell:
            "avvp import-features {params.folders:q} --clips {input:q} --output {output:q} > {log} 2>&1"


rule standardize_features:
    input:
        features=FEATURES,
        split=annotation(SPLIT_FILES["train"]),
    output:
        STANDARDIZED,
    log:
        LOGS / "standardize_features.log",
    benchmark:
        BENCHMARKS / "standardize_features.tsv"
    threads: stage_threads("features")
    resources:
        **stage_resources("features"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp standardize-features --input {input.features:q} --split-csv {input.split:q} --output {output:q} > {log} 2>&1"


rule filter_splits:
    input:
        features=[FEATURES, *(teacher_features(teacher) for teacher in TEACHERS)],
        pseudo_labels=[pseudo_label_file(teacher) for teacher in TEACHERS],
        splits=[annotation(name) for name in SPLIT_FILES.values()],
    output:
        splits=[available_split(split) for split in SPLIT_FILES],
        coverage=RESULTS / "splits" / "coverage.json",
    params:
        annotations=annotations_dir(),
        output_dir=subpath(output.coverage, parent=True),
        pseudo_labels=teacher_pseudo_label_options,
    log:
        LOGS / "filter_splits.log",
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp filter-splits --features {input.features:q} {params.pseudo_labels:q} --annotations-dir {params.annotations:q}"
        " --output-dir {params.output_dir:q} > {log} 2>&1"
