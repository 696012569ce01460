# Stage 1: the clips. The demo generates them; LLP shards its clip list and downloads (or links) each shard.

if config["dataset"] == "demo":

    rule make_demo:
        output:
            videos=directory(DATA / "videos"),
            annotations=[annotation(name) for name in ANNOTATION_ROWS],
        params:
            output=DATA,
            demo=canonical(config["demo"]),
        log:
            LOGS / "make_demo.log",
        conda:
            "../envs/avvp.yaml"
        shell:
            "avvp make-demo --output {params.output:q} --seed {params.demo[seed]} --num-train {params.demo[num_train]}"
            " --num-val {params.demo[num_val]} --num-test {params.demo[num_test]}"
            " --num-classes {params.demo[num_classes]} --frame-size {params.demo[frame_size]}"
            " --fps {params.demo[fps]} > {log} 2>&1"

else:

    rule fetch_annotations:
        output:
            [annotation(name) for name in ANNOTATION_ROWS],
        params:
            dest=annotations_dir(),
        log:
            LOGS / "fetch_annotations.log",
        conda:
            "../envs/avvp.yaml"
        shell:
            "avvp fetch-annotations --dest {params.dest:q} > {log} 2>&1"


rule shard_clips:
    input:
        clips=annotation(FULL_DATASET),
        extra=extra_clips_input,
    output:
        expand(DATA / "shards" / "{shard}.txt", shard=SHARDS),
    params:
        shards=len(SHARDS),
        output_dir=DATA / "shards",
        extra=extra_clips_option,
    log:
        LOGS / "shard_clips.log",
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp shard --clips {input.clips:q} {params.extra:q} --num-shards {params.shards}"
        " --output-dir {params.output_dir:q} > {log} 2>&1"


rule download:
    input:
        clips=DATA / "shards" / "{shard}.txt",
        source=source_videos,
    output:
        manifest=DATA / "manifests" / "{shard}.tsv",
        videos=DATA / "manifests" / "{shard}.videos.txt",
    params:
        video_dir=DATA / "videos",
        source=source_dir_option,
        yt_dlp=config["videos"]["yt_dlp"],
    log:
        LOGS / "download" / "{shard}.log",
    benchmark:
        BENCHMARKS / "download" / "{shard}.tsv"
    threads: stage_threads("download")
    resources:
        **stage_resources("download"),
    conda:
        "../envs/avvp.yaml"
    shell:
        "avvp download --clips {input.clips:q} --video-dir {params.video_dir:q} {params.source:q}"
        " --yt-dlp {params.yt_dlp:q} --manifest {output.manifest:q} --video-list {output.videos:q} > {log} 2>&1"
