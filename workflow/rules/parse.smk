# Target 'parse': your own videos (config parse.videos) through a trained experiment, in parse.jobs parts.
# Not part of the default target; run 'snakemake --cores all parse' after the main job.


if not config["parse"]["videos"]:

    rule parse_demo_list:
        input:
            split=annotation(SPLIT_FILES["test"]),
            videos=DATA / "videos",
        output:
            PARSE / "videos.txt",
        params:
            clips=config["parse"]["demo_clips"],
        log:
            LOGS / "parse_demo_list.log",
        run:
            write_demo_parse_list(input.split, input.videos, params.clips, output[0])
            Path(log[0]).write_text(f"wrote {output[0]}\n", encoding="utf-8")


rule parse_part:
    input:
        videos=parse_videos(),
        checkpoint=RESULTS / "train" / config["parse"]["experiment"] / "best.pt",
    output:
        directory(PARSE / "parts" / "{part}"),
    params:
        threads=stage_threads("parse"),
        jobs=config["parse"]["jobs"],
    log:
        LOGS / "parse" / "{part}.log",
    benchmark:
        BENCHMARKS / "parse" / "{part}.tsv"
    threads: stage_threads("parse")
    resources:
        **stage_resources("parse"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "OMP_NUM_THREADS={params.threads} avvp parse {input.videos:q} --checkpoint {input.checkpoint:q}"
        " --output-dir {output:q} --part {wildcards.part}/{params.jobs} --cores {params.threads} --tolerate-failures > {log} 2>&1"


rule parse:
    input:
        expand(PARSE / "parts" / "{part}", part=PARSE_PARTS),
    output:
        audio=PARSE / "pred_audio.csv",
        visual=PARSE / "pred_visual.csv",
        failures=PARSE / "failures.tsv",
    log:
        LOGS / "parse.log",
    run:
        join_parse_parts(input, output)
        Path(log[0]).write_text(f"joined {len(input)} part(s)\n", encoding="utf-8")
