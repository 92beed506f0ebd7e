"""The study level, after every model is scored: one tidy table of every score and what is read from it.

``tables`` (the tidy table), ``headline`` (which of its rows are the headline scores), ``table_checks`` (the headline
and models tables as the analysis reads them), ``comparisons`` (the pivot, measures, pairs and controls derived from
them) -> ``collect`` (rule collect_scores) -> ``statistics`` + ``analysis`` (rule analyse, ``brainalign analyse``) ->
``figures`` (rule figures: the figure registry) -> ``findings``, ``sections``, ``caveats`` -> ``summary_page`` (rule
summary).
"""
