"""Run inside Brain-Score Language's own environment (``/tmp/bsl/bin/python -P tests/support/bsl_lm.py JOB.json``;
``-P``, or this folder's tokenizers.py shadows the package): its prediction-formula parser, its Wikitext contexts
and its HuggingfaceSubject read-outs on the job's inputs, as JSON on stdout. tests/test_lm_benchmarks.py compares
them with brainalign's. Imports nothing from brainalign."""

import json
import math
import sys


def formulas(job):
    from brainscore_language.benchmarks.syntaxgym.sg_prediction import Prediction

    out = []
    for formula, totals_list in job["formulas"]:
        prediction = Prediction(0, formula, "sum")
        results = []
        for totals in totals_list:
            keyed = {(c, int(r)): v for c, r, v in totals}
            results.append(bool(prediction.apply_prediction_formula(keyed)))
        out.append(results)
    return out


def subject(folder):
    from brainscore_language.model_helpers.huggingface import HuggingfaceSubject
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    model = AutoModelForCausalLM.from_pretrained(folder)
    # the tokenizer as GPT-2's loads (no token_type_ids), from the saved tokenizer.json
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{folder}/tokenizer.json", eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", pad_token="<|endoftext|>", truncation_side="left",
                                        model_input_names=["input_ids", "attention_mask"])
    return HuggingfaceSubject(model_id="tiny", region_layer_mapping={}, model=model, tokenizer=tokenizer)


def main():
    job = json.loads(open(sys.argv[1]).read())
    result = {}
    if "formulas" in job:
        result["formulas"] = formulas(job)
    if "wikitext_rows" in job:
        from brainscore_language.benchmarks.wikitext_next_word.benchmark import WikitextAccuracy

        bench = WikitextAccuracy.__new__(WikitextAccuracy)
        bench.data = job["wikitext_rows"]
        result["contexts"], result["targets"] = bench.build_contexts()
    if "model" in job:
        from brainscore_language.artificial_subject import ArtificialSubject

        reading = []
        for parts in job.get("reading_texts", []):
            s = subject(job["model"])
            s.start_behavioral_task(ArtificialSubject.Task.reading_times)
            try:
                values = [float(v) for v in s.digest_text(parts)["behavior"].values]
                reading.append([None if math.isnan(v) else v for v in values])
            except RuntimeError as error:  # a part adding no tokens: Brain-Score's cached forward fails
                reading.append(f"error: {str(error).splitlines()[0]}")
        result["reading"] = reading
        if job.get("next_word_parts"):
            s = subject(job["model"])
            s.start_behavioral_task(ArtificialSubject.Task.next_word)
            result["next_word"] = [str(v) for v in s.digest_text(job["next_word_parts"])["behavior"].values]
    print(json.dumps(result))


main()
