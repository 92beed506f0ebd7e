"""Rule score: for each brain dataset of one model, the layer profile, best layer and nested layer choice,
ceiling-normalised, as tidy rows."""
from brainalign.runner import run_rule


def step(sm, log):
    from brainalign.encoding.layer_scores import score_layers_file
    from brainalign.extraction.shards import read_layer_names

    outputs = zip(sm.params.datasets, sm.input.shards, sm.input.ceilings, sm.output.scores, strict=True)
    for dataset, shard, ceiling, scores in outputs:
        plan = sm.params.plan[dataset]
        score_layers_file(plan["parts"], ceiling, scores, model=sm.wildcards.model, dataset=dataset,
                          layer_names=read_layer_names(shard), options=plan["options"])


run_rule(snakemake, step)
