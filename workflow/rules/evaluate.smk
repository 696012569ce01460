# Stage 4: the exact LLP metrics of every experiment and of the trivial baseline.


rule evaluate:
    input:
        split=eval_split_csv(),
        gt_audio=annotation(GT_AUDIO),
        gt_visual=annotation(GT_VISUAL),
        pred_audio=RESULTS / "predict" / "{method}" / "pred_audio.csv",
        pred_visual=RESULTS / "predict" / "{method}" / "pred_visual.csv",
    output:
        RESULTS / "metrics" / "{method}.json",
    log:
        LOGS / "evaluate" / "{method}.log",
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp evaluate --split-csv {input.split:q} --gt-audio {input.gt_audio:q} --gt-visual {input.gt_visual:q}"
        " --pred-audio {input.pred_audio:q} --pred-visual {input.pred_visual:q} --output {output:q} > {log} 2>&1"
