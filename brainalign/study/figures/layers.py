"""Figures of where in the network alignment lies: the layer profile of every model."""

from __future__ import annotations

from brainalign.study.figures.registry import FigureInputs, register_figure
from brainalign.study.figures.style import legend, panels


@register_figure(
    "layer_profiles", order=30,
    caption="Encoding score by relative layer depth for each model (dotted: noise ceiling): read where in the "
            "network alignment peaks and how far untrained controls stay below.")
def layer_profiles(study: FigureInputs):
    """Score vs relative layer depth, one line per model, one panel per dataset, the ceiling as a dotted line; each
    dataset under its headline protocol (``Headline.protocol_of``)."""
    tidy = study.tidy
    if tidy.empty:
        return None
    wanted = tidy["dataset"].map(study.headline.protocol_of)
    data = tidy[(tidy["kind"] == "brain") & (tidy["metric"] == "linear") & (tidy["protocol"] == wanted)
                & (tidy["selection"] == "layer")][["model", "dataset", "layer", "layer_depth", "raw_r", "ceiling"]]
    if data.empty:
        return None
    style = study.style
    datasets = list(dict.fromkeys(data["dataset"]))
    fig, axes = panels(len(datasets), height=2.3)
    for ax, dataset in zip(axes, datasets):
        part = data[data["dataset"] == dataset]
        for model, rows in part.groupby("model", sort=True):
            look = style.of(model)
            ax.plot(rows["layer_depth"], rows["raw_r"], ls=look["ls"], marker=look["marker"], ms=3, color=look["color"],
                    mfc=look["mfc"], lw=1.2, label=style.label(model))
        ceiling = part["ceiling"].dropna()
        if len(ceiling):
            ax.axhline(ceiling.iloc[0], color="black", ls=":", lw=1, label="noise ceiling")
        ax.set_title(f"{dataset} ({study.headline.protocol_of(dataset)})")
        ax.set_xlabel("relative layer depth (0 = embeddings)")
        ax.set_ylabel("encoding score (Pearson r)")
    legend(fig, axes)
    return fig, data
