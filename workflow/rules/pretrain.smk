# Stage 2b: AVG pretraining (paper 002, section 3.2): grounding graphs of every clip with features, then one
# encoder per pretraining variant that some experiment starts from.


rule build_graphs:
    input:
        MODEL_FEATURES,
    output:
        PRETRAINING / "graphs.h5",
    params:
        thresholds=graph_threshold_options,
    log:
        LOGS / "build_graphs.log",
    benchmark:
        BENCHMARKS / "build_graphs.tsv"
    threads: stage_threads("build_graphs")
    resources:
        **stage_resources("build_graphs"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp build-graphs --features {input:q} --output {output:q} {params.thresholds:q} > {log} 2>&1"


rule pretrain_config:
    input:
        lambda wildcards: config_chain(config["pretraining"]["config"]),
    output:
        PRETRAINING / "{variant}.yaml",
    params:
        pretraining=canonical(config["pretraining"]["settings"]),
    log:
        LOGS / "pretrain_config" / "{variant}.log",
    run:
        write_yaml(output[0], pretrain_settings(wildcards.variant))
        Path(log[0]).write_text(f"wrote {output[0]}\n", encoding="utf-8")


rule pretrain_avg:
    input:
        config=PRETRAINING / "{variant}.yaml",
        features=MODEL_FEATURES,
        graphs=PRETRAINING / "graphs.h5",
    output:
        encoder=PRETRAINING / "{variant}" / "encoder.pt",
        last=PRETRAINING / "{variant}" / "last.pt",
        history=PRETRAINING / "{variant}" / "history.jsonl",
    params:
        threads=stage_threads("pretrain"),
        output_dir=subpath(output.encoder, parent=True),
    log:
        LOGS / "pretrain_avg" / "{variant}.log",
    benchmark:
        BENCHMARKS / "pretrain_avg" / "{variant}.tsv"
    threads: stage_threads("pretrain")
    resources:
        **stage_resources("pretrain"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "OMP_NUM_THREADS={params.threads} avvp pretrain --config {input.config:q} --features {input.features:q}"
        " --threads {params.threads} --graphs {input.graphs:q} --output-dir {params.output_dir:q} > {log} 2>&1"
