# Stage 5: the run's report (Markdown + self-contained HTML), also gathered by 'snakemake --report'.


rule report:
    input:
        metrics=expand(RESULTS / "metrics" / "{method}.json", method=[*EXPERIMENTS, "weak_baseline"]),
        checkpoints=expand(RESULTS / "train" / "{experiment}" / "best.pt", experiment=EXPERIMENTS),
        probabilities=expand(RESULTS / "predict" / "{experiment}" / "probabilities.h5", experiment=EXPERIMENTS),
        manifests=manifests_input,
        features=MODEL_FEATURES,
        coverage=RESULTS / "splits" / "coverage.json",
        reference=config["reference"]["results"],
        pretraining=report_pretraining_inputs,
        denoising=report_denoising_inputs,
        refinement=report_refinement_inputs,
        teachers=report_teacher_inputs,
    output:
        markdown=report(RESULTS / "report" / "report.md", category="Report", labels={"format": "Markdown"}),
        html=report(RESULTS / "report" / "report.html", category="Report", labels={"format": "HTML"}),
    params:
        experiments=report_experiment_options,
        papers=report_paper_options,
        run=config["run"],
        results=RESULTS,
        baseline=RESULTS / "metrics" / "weak_baseline.json",
        manifests=manifest_options,
        pretraining=report_pretraining_options,
        denoising=report_denoising_options,
        refinement=report_refinement_options,
        teachers=report_teacher_options,
    log:
        LOGS / "report.log",
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp report --run-name {params.run:q} --results-dir {params.results:q} {params.experiments:q} --baseline {params.baseline:q}"
        " --features {input.features:q} --coverage {input.coverage:q} {params.manifests:q} --reference {input.reference:q} {params.papers:q}"
        " {params.pretraining:q} {params.denoising:q} {params.refinement:q} {params.teachers:q} --output-md {output.markdown:q} --output-html {output.html:q} > {log} 2>&1"
