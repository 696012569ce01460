# The AVVP workflow: clips -> features -> [AVG graphs -> pretraining] [-> noise estimation | label refinement] -> parsing models -> LLP evaluation -> report.
# Default target: the whole synthetic demo (config/config.yaml). The LLP dataset: --configfile config/llp.yaml.
# Usage and options: docs/workflow.md.

import yaml
from snakemake_interface_common.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from avvp.command_line_config import type_strings

min_version("9.0")


# The demo config is the default; a --configfile replaces it instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



SCHEMA = "workflow/schemas/config.schema.yaml"
# --config 'cluster={gpus: 0}' arrives with string scalars ("0"): read them as the schema's types
config.update(type_strings(dict(config), yaml.safe_load((Path(workflow.basedir) / SCHEMA).read_text())))
try:
    validate(config, SCHEMA)
except WorkflowError as err:  # say which key is wrong in one line, not after the whole schema
    problem = err.__context__  # the jsonschema ValidationError that snakemake's validate wrapped
    if not hasattr(problem, "absolute_path"):
        raise
    where = ".".join(str(part) for part in problem.absolute_path) or "(top level)"
    raise WorkflowError(f"invalid config: {where}: {problem.message}") from None


# Light rules run where Snakemake runs; on a cluster only the heavy rules (their resources: section cluster
# of the config, workflow/rules/common.smk) are queued as jobs.
localrules:
    all,
    make_demo,
    fetch_annotations,
    shard_clips,
    filter_splits,
    train_config,
    pretrain_config,
    noise_estimator_config,
    label_refiner_config,
    weak_baseline,
    evaluate,
    report,
    parse_demo_list,
    parse,


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/denoise.smk"
include: "workflow/rules/refine.smk"
include: "workflow/rules/teachers.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/parse.smk"


rule all:
    default_target: True
    input:
        rules.report.output,
