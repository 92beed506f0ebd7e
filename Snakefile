# brainalign: language models vs the human brain and human reading behaviour (Aw et al. 2023, reproduced).
#
# Run:   snakemake --cores 2                      (the embedded default, offline)
#        snakemake --cores 2 --configfile config/paper.yaml     (the paper's 33 models; needs the Hub)
#        snakemake --workflow-profile profiles/slurm             (a SLURM GPU cluster)
#        snakemake --cores 2 results/scores/<model>/<dataset>.csv   (one model alone)
# The logic lives in the `brainalign` package; the rules in workflow/rules/ only wire inputs to outputs.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/encoding.smk"
include: "workflow/rules/behaviour.smk"
include: "workflow/rules/lm_benchmarks.smk"
include: "workflow/rules/analysis.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_outputs(),
