# Paths and input functions shared by the rules. Kept cheap: every cluster job re-parses this file.
# Parse-time imports are PyYAML and five light avvp modules (standard library and PyYAML only, tested in
# tests/test_workflow_dryrun.py), so that file names, config merging and the paper-method check are defined
# once for the package and the workflow. The process running Snakemake therefore needs the avvp package
# (pip install -e .), also with --software-deployment-method conda, where the rules' own jobs run in the
# conda environment of workflow/envs/avvp.yaml. The main Snakemake process alone also imports the training
# config models (torch under them) to check every training config when the workflow starts.

from types import SimpleNamespace

import yaml

from avvp.config_files import config_chain, deep_merge, read_config_file
from avvp.data.annotations import ANNOTATION_ROWS, FULL_DATASET, GT_AUDIO, GT_VISUAL, SPLIT_FILES, count_rows
from avvp.io import read_text
from avvp.preparation.shard_names import SHARD_PATTERN, shard_names
from avvp.reports.reference import read_reference

DATA = Path(config["data_root"])
RESULTS = Path("results") / config["run"]
LOGS = Path("logs") / config["run"]
BENCHMARKS = RESULTS / "benchmarks"
SHARDS = shard_names(config["shards"])
EXPERIMENTS = list(config["experiments"])
PRETRAINING_VARIANTS = sorted({spec["pretraining"] for spec in config["experiments"].values() if spec.get("pretraining")})
"""AVG pretraining variants some experiment starts from (none: no graph or pretraining jobs)."""
PRETRAINING = RESULTS / "pretraining"
DENOISING = RESULTS / "denoising"
NOISE_ESTIMATORS = sorted({spec["noise_estimator"] for spec in config["experiments"].values() if spec.get("noise_estimator")})
"""Noise estimators some experiment's label denoising uses (none: no estimator jobs)."""
REFINEMENT = RESULTS / "refinement"
LABEL_REFINERS = sorted({spec["label_refiner"] for spec in config["experiments"].values() if spec.get("label_refiner")})
"""Label refiners some experiment is trained after (none: no refinement jobs)."""
TEACHERS = list(config.get("teachers", {}))
"""Pretrained teachers (VALOR's CLIP + CLAP) whose features and pseudo-labels are made (none: no jobs)."""
TEACHER_KINDS = "clip,clap,clap_segments"
PARSE = RESULTS / "parse"
PARSE_PARTS = [str(i) for i in range(config["parse"]["jobs"])]
FEATURES = DATA / "features" / "features.h5"
STANDARDIZED = DATA / "features" / "features.standardized.h5"
MODEL_FEATURES = STANDARDIZED if config["features"]["standardize"] else FEATURES
"""The store the models train and predict on."""


def stage_threads(stage):
    """The threads of a heavy stage's jobs (config cluster.stages), which are also its command's torch
    threads: the rules pass this number, not the {threads} Snakemake grants (capped by --cores locally),
    so that a stage computes the same numbers locally and on a cluster."""
    return config["cluster"]["stages"][stage]["threads"]


def gpu_request():
    """What a GPU stage's job asks for: {'gres': 'gpu:a100:1'} (--gres), {'gpu': N} with an optional
    'gpu_model' (--gpus), or nothing with cluster.gpus 0 (a CPU-only run)."""
    cluster = config["cluster"]
    if cluster["gres"]:
        return {"gres": cluster["gres"]}
    if cluster["gpus"] == 0:
        return {}
    request = {"gpu": cluster["gpus"]}
    return {**request, "gpu_model": cluster["gpu_model"]} if cluster["gpu_model"] else request


def stage_resources(stage):
    """The resources of a heavy stage's jobs: mem_mb and runtime (minutes) of config cluster.stages,
    doubled on each retry, and the GPU request where the stage uses one."""
    spec = config["cluster"]["stages"][stage]
    resources = {
        "mem_mb": lambda wildcards, attempt: spec["mem_mb"] * 2 ** (attempt - 1),
        "runtime": lambda wildcards, attempt: spec["runtime"] * 2 ** (attempt - 1),
    }
    return {**resources, **(gpu_request() if spec["gpu"] else {})}


wildcard_constraints:
    shard=SHARD_PATTERN,
    experiment="|".join(EXPERIMENTS),
    variant="uni|cross|multi",
    estimator="|".join(config["noise_estimators"]) or "no_estimator",
    refiner="|".join(config["label_refiners"]) or "no_refiner",
    teacher="|".join(TEACHERS) or "no_teacher",
    part=r"\d+",


def canonical(value):
    """``value`` with the keys of every mapping in it sorted (lists keep their order): a rule's params, so
    that reordering the keys of an unchanged config does not look like a change to Snakemake (it compares
    the repr of params)."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def as_list(value):
    """A config value that is null, one string or a list of strings, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def paper_methods(experiment):
    """The reference-CSV methods an experiment reproduces (its paper_method: one name or a list)."""
    return as_list(config["experiments"][experiment].get("paper_method"))


def check_stage_names():
    """Stop the workflow with one line when an experiment names a noise estimator, a label refiner or a
    teacher that is not configured, or reads a teacher's features without naming one."""
    for key, section in (("noise_estimator", "noise_estimators"), ("label_refiner", "label_refiners")):
        for experiment, spec in config["experiments"].items():
            name = spec.get(key)
            if name and name not in config[section]:
                known = ", ".join(config[section]) or "none configured"
                raise ValueError(f"config: experiment '{experiment}' names {key} '{name}'; known: {known}")
    for experiment, spec in config["experiments"].items():
        teacher = spec.get("teacher")
        if teacher and teacher not in TEACHERS:
            known = ", ".join(TEACHERS) or "none configured"
            raise ValueError(f"config: experiment '{experiment}' names teacher '{teacher}'; known: {known}")
        if spec.get("teacher_features") and not teacher:
            raise ValueError(f"config: experiment '{experiment}' sets teacher_features but names no teacher")


check_stage_names()


def check_reference():
    """Stop the workflow with one line when reference.paper or an experiment's paper_method names nothing
    in the reference CSV (the line names the experiment and close method names)."""
    reference = read_reference(config["reference"]["results"])
    reference.check_papers(as_list(config["reference"]["paper"]))
    for experiment in EXPERIMENTS:
        reference.check_methods(experiment, paper_methods(experiment))


check_reference()


def annotations_dir():
    """The folder of the AVVP_*.csv label files: written by make_demo, or the LLP folder."""
    if config["dataset"] == "demo":
        return DATA / "annotations"
    if not config.get("annotations_dir"):
        raise ValueError("config: dataset 'llp' needs annotations_dir (e.g. --config annotations_dir=data/llp/annotations)")
    folder = Path(config["annotations_dir"])
    if not folder.is_dir():
        raise ValueError(
            f"config: annotations_dir '{folder}' does not exist. Check the path, or create it "
            f"(mkdir -p {folder}) and the workflow fetches the six AVVP_*.csv files into it "
            f"(or run: avvp fetch-annotations --dest {folder})"
        )
    return folder


def annotation(name):
    """Path of one annotation file."""
    return annotations_dir() / name


def known_clip_count():
    """How many clips the shards can hold at most, when known before any job runs: the demo's clip counts, or
    the rows of LLP's full clip list (when the file is there) plus the lines of pretraining.extra_clips (an
    upper bound: 'avvp shard' drops extra clips that are labelled ones). None when not known yet."""
    if config["dataset"] == "demo":
        return sum(config["demo"][f"num_{split}"] for split in SPLIT_FILES)
    clips = annotation(FULL_DATASET)
    if not clips.is_file():
        return None
    extra = Path(config["pretraining"]["extra_clips"] or "")
    lines = read_text(extra).splitlines() if extra.is_file() else []
    return count_rows(clips) + sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def check_shard_count():
    """Stop the workflow with one line when config ``shards`` exceeds the clips there are (a shard would be
    empty), where their number is known when the workflow starts."""
    clips = known_clip_count()
    if clips is not None and config["shards"] > clips:
        raise ValueError(f"config: shards: {config['shards']} shards for only {clips} clips: use at most {clips}")


if config["features"]["source"] == "extract":  # imported features are not sharded
    check_shard_count()


def available_split(split):
    """Split file restricted to the clips that have features (written by rule filter_splits)."""
    return RESULTS / "splits" / SPLIT_FILES[split]


def eval_split_csv():
    """Split that is predicted and scored (its clips with features)."""
    return available_split(config["evaluation"]["split"])


def source_videos(wildcards):
    """The demo's videos folder (so downloads wait for make_demo); nothing for LLP."""
    return [DATA / "videos"] if config["dataset"] == "demo" else []


def source_dir_option(wildcards):
    """The --source-dir option of 'avvp download', or nothing."""
    source = config["videos"]["source_dir"]
    return ["--source-dir", source] if source else []


def base_train_config(wildcards):
    """The experiment's base 'avvp train' config file and the files it extends, or nothing."""
    path = config["experiments"][wildcards.experiment].get("config")
    return config_chain(path) if path else []


def pretrained_encoder(experiment):
    """The encoder.pt an experiment starts from, or nothing."""
    variant = config["experiments"][experiment].get("pretraining")
    return [PRETRAINING / variant / "encoder.pt"] if variant else []


def noise_ratio_file(estimator):
    """The noise_ratios.npz of a noise estimator (written by rule estimate_noise)."""
    return DENOISING / estimator / "noise_ratios.npz"


def noise_ratios(experiment):
    """The noise_ratios.npz an experiment's label denoising reads, or nothing."""
    estimator = config["experiments"][experiment].get("noise_estimator")
    return [noise_ratio_file(estimator)] if estimator else []


def stage_config(section, wildcard):
    """Input function: the base 'avvp train' config (and the files it extends) of the model the stage named
    by ``wildcard`` (an entry of ``section``) trains first: a noise estimator, a label refiner's base model."""
    return lambda wildcards: config_chain(config[section][getattr(wildcards, wildcard)]["config"])


def stage_settings(section, name, base):
    """The 'avvp train' config of the model stage ``name`` of ``section`` trains first: its base file, the
    shared settings, its own, the workflow's annotations folder and splits."""
    settings = deep_merge(read_config_file(base[0]), config["training"])
    settings = deep_merge(settings, config[section][name].get("train", {}))
    return deep_merge(settings, split_settings())


def stage_options(section, wildcard, names):
    """Input function: the options of a stage's command that its entry of ``section`` (named by
    ``wildcard``) sets, e.g. '--audio-threshold 0.6' for ``audio_threshold``."""

    def options(wildcards):
        spec = config[section][getattr(wildcards, wildcard)]
        given = [name for name in names if name in spec]
        return [arg for name in given for arg in (f"--{name.replace('_', '-')}", str(spec[name]))]

    return options


def refined_label_file(refiner):
    """The refined_labels.npz of a label refiner (written by rule refine_labels)."""
    return REFINEMENT / refiner / "refined_labels.npz"


def refined_labels(experiment):
    """The refined_labels.npz an experiment is trained on, or nothing."""
    refiner = config["experiments"][experiment].get("label_refiner")
    return [refined_label_file(refiner)] if refiner else []


def split_settings():
    """The workflow's annotations folder and filtered train/val splits, as 'avvp train' settings."""
    splits = {"train": str(available_split("train")), "val": str(available_split("val"))}
    return {"annotations_dir": str(annotations_dir()), "splits": splits}


def pretrain_settings(variant):
    """The 'avvp pretrain' config of one variant: the base file, the workflow's settings, the variant."""
    settings = deep_merge(read_config_file(config["pretraining"]["config"]), config["pretraining"]["settings"])
    return deep_merge(settings, {"loss": {"variant": variant}})


def train_settings(experiment, base):
    """The 'avvp train' config of one experiment: its base file, the shared settings, its own, the
    workflow's annotations folder (features and output folder are given on the command line), for an
    experiment on a pretrained encoder, that encoder's file and sizes, for one that names a noise estimator,
    its noise ratios (for denoising, or the forget rates of co-training), for one that names a label
    refiner, its refined labels, and for one whose loss trains on pseudo-labels, its teacher's."""
    settings = read_config_file(base[0]) if base else {}
    settings = deep_merge(settings, config["training"])
    settings = deep_merge(settings, config["experiments"][experiment].get("train", {}))
    settings = deep_merge(settings, split_settings())
    for ratios in noise_ratios(experiment):
        procedure = "co_training" if settings.get("co_training") else "denoising"
        settings = deep_merge(settings, {procedure: {"noise_ratios": str(ratios)}})
    for refined in refined_labels(experiment):
        settings = deep_merge(settings, {"refined_labels": str(refined)})
    teacher = experiment_teacher(experiment)
    if teacher and trains_on_pseudo_labels(settings):
        settings = deep_merge(settings, {"pseudo_labels": str(pseudo_label_file(teacher))})
    elif teacher and not config["experiments"][experiment].get("teacher_features"):
        raise ValueError(
            f"config: experiment '{experiment}' names teacher '{teacher}' but neither trains on its pseudo-labels "
            "(loss terms pseudo_audio, pseudo_visual) nor reads its features (teacher_features: true)"
        )
    elif trains_on_pseudo_labels(settings):
        raise ValueError(
            f"config: experiment '{experiment}' trains on pseudo-labels (loss terms pseudo_audio, pseudo_visual): "
            f"name the teacher that makes them (teacher: {TEACHERS[0] if TEACHERS else '<name>'})"
        )
    for encoder in pretrained_encoder(experiment):
        variant = config["experiments"][experiment]["pretraining"]
        sizes = pretrain_settings(variant).get("encoder", {})
        settings = deep_merge(settings, {"pretrained_encoder": str(encoder), "model": {"input_encoder": sizes}})
    return settings


def check_training_configs():
    """Stop the workflow with one line naming the experiment (or stage) and the key when a training config it
    would write is invalid (a typo, a wrong type) or a base config file is missing: when the workflow starts,
    not after the data are made. Checks every experiment's 'avvp train' config, those of the noise estimators
    and label refiners some experiment uses, and the 'avvp pretrain' config of each pretraining variant, with
    the models 'avvp train' and 'avvp pretrain' validate them with."""
    from functools import partial

    from avvp.errors import InputError
    from avvp.pretraining.config import PretrainConfig
    from avvp.training.config import TrainConfig, validate_settings

    def experiment(name):
        return train_settings(name, base_train_config(SimpleNamespace(experiment=name)))

    def stage(section, wildcard, name):
        return stage_settings(section, name, stage_config(section, wildcard)(SimpleNamespace(**{wildcard: name})))

    checks = [(f"experiment '{e}'", TrainConfig, partial(experiment, e)) for e in EXPERIMENTS]
    checks += [(f"noise_estimators.{n}", TrainConfig, partial(stage, "noise_estimators", "estimator", n)) for n in NOISE_ESTIMATORS]
    checks += [(f"label_refiners.{n}", TrainConfig, partial(stage, "label_refiners", "refiner", n)) for n in LABEL_REFINERS]
    checks += [(f"pretraining variant '{v}'", PretrainConfig, partial(pretrain_settings, v)) for v in PRETRAINING_VARIANTS]
    for source, schema, settings in checks:
        try:
            validate_settings(schema, settings(), f"config: {source}")
        except InputError as err:
            message = str(err)
            raise ValueError(message if message.startswith("config: ") else f"config: {source}: {message}") from None


def graph_threshold_options(wildcards):
    """'--visual-threshold/--visual-quantile' and '--audio-...' options of 'avvp build-graphs'."""
    graphs, options = config["pretraining"]["graphs"], []
    for modality in ("visual", "audio"):
        threshold, quantile = graphs.get(f"{modality}_threshold"), graphs.get(f"{modality}_quantile")
        if threshold is not None:
            options += [f"--{modality}-threshold", str(threshold)]
        elif quantile is not None:
            options += [f"--{modality}-quantile", str(quantile)]
        else:
            raise ValueError(f"config: pretraining.graphs needs {modality}_threshold or {modality}_quantile")
    return options


def extra_clips_input(wildcards):
    """The pretraining.extra_clips list, or nothing."""
    extra = config["pretraining"]["extra_clips"]
    return [extra] if extra else []


def extra_clips_option(wildcards, input):
    """'--extra-clips PATH' of 'avvp shard', or nothing."""
    return ["--extra-clips", input.extra[0]] if input.extra else []


def report_pretraining_inputs(wildcards):
    """The graphs and pretraining histories the report shows (none without pretraining)."""
    if not PRETRAINING_VARIANTS:
        return []
    return [PRETRAINING / "graphs.h5", *(PRETRAINING / v / "history.jsonl" for v in PRETRAINING_VARIANTS)]


def report_pretraining_options(wildcards):
    """'--graphs G.h5 --pretraining VARIANT DIR ...' of 'avvp report', or nothing."""
    if not PRETRAINING_VARIANTS:
        return []
    options = ["--graphs", str(PRETRAINING / "graphs.h5")]
    for variant in PRETRAINING_VARIANTS:
        options += ["--pretraining", variant, str(PRETRAINING / variant)]
    return options


def report_denoising_inputs(wildcards):
    """The noise-ratio files the report shows (none without label denoising)."""
    return [noise_ratio_file(estimator) for estimator in NOISE_ESTIMATORS]


def report_denoising_options(wildcards):
    """'--noise-ratios ESTIMATOR FILE ...' of 'avvp report', or nothing."""
    return [arg for estimator in NOISE_ESTIMATORS for arg in ("--noise-ratios", estimator, str(noise_ratio_file(estimator)))]


def report_refinement_inputs(wildcards):
    """The refined-label files the report shows (none without label refinement)."""
    return [refined_label_file(refiner) for refiner in LABEL_REFINERS]


def report_refinement_options(wildcards):
    """'--refined-labels REFINER FILE ...' of 'avvp report', or nothing."""
    return [arg for refiner in LABEL_REFINERS for arg in ("--refined-labels", refiner, str(refined_label_file(refiner)))]


def parse_videos():
    """The videos of the parse target: config parse.videos, or the list of demo test clips."""
    return config["parse"]["videos"] or PARSE / "videos.txt"


def write_demo_parse_list(split_csv, videos_dir, count, output):
    """Write the paths of the first ``count`` clips of a split that have a video in ``videos_dir``."""
    from avvp.data.labels import read_weak_labels  # at job time only: parsing the workflow stays light

    paths = [Path(videos_dir) / f"{clip}.mp4" for clip in read_weak_labels(split_csv).video_ids]
    existing = [path for path in paths if path.is_file()][:count]
    Path(output).write_text("".join(f"{path}\n" for path in existing), encoding="utf-8")


def join_parse_parts(parts, output):
    """Concatenate the parts' prediction CSVs and failure lists (one header each) into ``output``."""
    for name, target in (("pred_audio.csv", output.audio), ("pred_visual.csv", output.visual), ("failures.tsv", output.failures)):
        tables = [(Path(part) / name).read_text(encoding="utf-8").splitlines() for part in parts]
        rows = [tables[0][0]] + [row for table in tables for row in table[1:]]
        Path(target).write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_yaml(path, data):
    """Write ``data`` as YAML to ``path``."""
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def frame_size_options(wildcards):
    """The extractor's reduced frame sizes (demo only), or nothing for the published sizes."""
    sizes = [("--image-size", config["features"]["image_size"]), ("--clip-size", config["features"]["clip_size"])]
    return [arg for flag, size in sizes if size for arg in (flag, str(size))]


def import_options(wildcards):
    """The folder options of 'avvp import-features'; each of the three folders must be configured."""
    folders = config["features"]["import"]
    missing = [kind for kind, folder in folders.items() if not folder]
    if missing or len(folders) < 3:
        raise ValueError("config: features.source 'import' needs features.import.vggish, .res152 and .r2plus1d")
    return [arg for kind in ("vggish", "res152", "r2plus1d") for arg in (f"--{kind}", folders[kind])]


def manifests_input(wildcards):
    """Download manifests of every shard (none when features are imported: there are no videos then)."""
    if config["features"]["source"] == "import":
        return []
    return expand(DATA / "manifests" / "{shard}.tsv", shard=SHARDS)


def manifest_options(wildcards, input):
    """'--manifest PATH' for each download manifest."""
    return [arg for path in input.manifests for arg in ("--manifest", path)]


def report_experiment_options(wildcards):
    """'--experiment NAME PAPER_METHOD' for 'avvp report', one per experiment and paper method, and
    '--new-experiment NAME' for each experiment no paper reports."""
    pairs = [(name, method) for name in EXPERIMENTS for method in paper_methods(name)]
    new = [arg for name in EXPERIMENTS if not paper_methods(name) for arg in ("--new-experiment", name)]
    return [arg for name, method in pairs for arg in ("--experiment", name, method)] + new


def report_paper_options(wildcards):
    """'--paper PAPER' for each paper the report is restricted to (reference.paper), or nothing."""
    return [arg for paper in as_list(config["reference"]["paper"]) for arg in ("--paper", paper)]


def teacher_setting(teacher, key, default=None):
    """One setting of a teacher (config teachers.<name>), or its schema default."""
    return config["teachers"][teacher].get(key, default)


def teacher_features(teacher):
    """The teacher's feature store (clip, clap, clap_segments with the prompt embeddings; or imported)."""
    return DATA / "teachers" / teacher / "features.h5"


def pseudo_label_file(teacher):
    """The pseudo_labels.h5 of a teacher (written by rule pseudo_labels)."""
    return RESULTS / "teachers" / teacher / "pseudo_labels.h5"


def experiment_teacher(experiment):
    """The teacher an experiment names, or None."""
    return config["experiments"][experiment].get("teacher")


def trains_on_pseudo_labels(settings):
    """Whether 'avvp train' settings have a loss term on segment-level pseudo-labels (pseudo_audio,
    pseudo_visual)."""
    return any(term.startswith("pseudo_") for term in settings.get("loss", {}).get("terms", {}))


def experiment_pseudo_labels(experiment):
    """The pseudo_labels.h5 an experiment trains on (its teacher's, when its loss has pseudo-label terms),
    or nothing."""
    teacher = experiment_teacher(experiment)
    if not teacher:
        return []
    settings = train_settings(experiment, base_train_config(SimpleNamespace(experiment=experiment)))
    return [pseudo_label_file(teacher)] if settings.get("pseudo_labels") else []


def model_features(experiment):
    """The feature stores an experiment's model reads, in order: the model store, then, with
    teacher_features, its teacher's store (each kind is taken from the first store that has it)."""
    spec = config["experiments"][experiment]
    return [MODEL_FEATURES, *([teacher_features(spec["teacher"])] if spec.get("teacher_features") else [])]


def teacher_pseudo_label_options(wildcards):
    """'--pseudo-labels FILE ...' of every teacher for 'avvp filter-splits', or nothing (no teachers)."""
    return ["--pseudo-labels", *map(str, map(pseudo_label_file, TEACHERS))] if TEACHERS else []


def pseudo_label_agreement(teacher):
    """The agreement JSON of a teacher's pseudo-labels with the dense val/test labels."""
    return RESULTS / "teachers" / teacher / "agreement.json"


def teacher_import(teacher, key):
    """A folder of a teacher's 'import' setting; one clear line when it is not configured."""
    folder = teacher_setting(teacher, "import", {}).get(key)
    if not folder:
        raise ValueError(f"config: teacher '{teacher}' has source 'import' but no import.{key} folder")
    return folder


def teacher_extract_options(wildcards):
    """The weights and model options of 'avvp extract' for a teacher's kinds."""
    teacher = wildcards.teacher
    return [
        "--weights", teacher_setting(teacher, "weights", "pretrained"),
        "--clip-model", teacher_setting(teacher, "clip_model", "openai/clip-vit-large-patch14"),
        "--clap-model", teacher_setting(teacher, "clap_model", "laion/clap-htsat-fused"),
    ]  # fmt: skip


def teacher_import_options(wildcards):
    """The --clip and --clap folders of 'avvp import-features' for a teacher with source 'import'."""
    return [arg for key in ("clip", "clap") for arg in (f"--{key}", teacher_import(wildcards.teacher, key))]


def pseudo_label_inputs(wildcards):
    """The teacher's feature store (source extract), or nothing (import reads the released folders)."""
    if teacher_setting(wildcards.teacher, "source", "extract") == "import":
        return []
    return [teacher_features(wildcards.teacher)]


def pseudo_label_options(wildcards, input):
    """Where 'avvp pseudo-labels' takes the labels from (the store, or the released folders) and the
    configured thresholds."""
    teacher = wildcards.teacher
    if teacher_setting(teacher, "source", "extract") == "import":
        return ["--import-visual", teacher_import(teacher, "visual_labels"),
                "--import-audio", teacher_import(teacher, "audio_labels")]  # fmt: skip
    options = ["--features", str(input.features)]
    for modality in ("visual", "audio"):
        value = teacher_setting(teacher, f"{modality}_thresholds")
        if value is not None:
            options += [f"--{modality}-thresholds", str(value)]
    return options


def report_teacher_inputs(wildcards):
    """The agreement JSON of every teacher."""
    return [pseudo_label_agreement(teacher) for teacher in TEACHERS]


def report_teacher_options(wildcards):
    """'--pseudo-labels NAME FILE' for each teacher."""
    return [arg for t in TEACHERS for arg in ("--pseudo-labels", t, str(pseudo_label_agreement(t)))]


def teacher_store_rule_input(wildcards):
    """The teacher's shards (source extract), or the label file listing the clips to import (source import)."""
    if teacher_setting(wildcards.teacher, "source", "extract") == "import":
        return [annotation(FULL_DATASET)]
    if config["features"]["source"] == "import":
        raise ValueError(
            f"config: teacher '{wildcards.teacher}' extracts from the clips, but features.source is 'import' "
            "(no videos): set its source to import with VALOR's released folders"
        )
    return expand(DATA / "teachers" / wildcards.teacher / "shards" / "{shard}.h5", shard=SHARDS)


def teacher_store_command(wildcards, input, output):
    """Merge the teacher's shards, or import VALOR's released CLIP and CLAP features of the clips of the
    label file (the rule's input)."""
    if teacher_setting(wildcards.teacher, "source", "extract") == "import":
        clips = ["--clips", str(input[0])]
        return ["import-features", *teacher_import_options(wildcards), *clips, "--output", str(output)]
    return ["merge-features", *map(str, input), "--output", str(output)]


# Last, as it needs every function above; not again in every cluster job, as the models import torch.
if workflow.is_main_process:
    check_training_configs()
