"""The miniature's fixture designs (stimuli and responses as plain arrays), each with a planted signal: the paper's
four datasets, and the Brain-Score Language assemblies Futrell2018, Fedorenko2016.language and Tuckute2024.language.

Every text unit has a *marker count* (:func:`~tests.support.miniature.corpus.marker_count`); some neuroids of every
fMRI dataset respond to it (linearly, plus noise), the others are pure noise. Reading times depend on word length,
marker words and unigram surprisal.
"""

from __future__ import annotations

import hashlib

import numpy as np

from tests.support.miniature.corpus import (
    ADJECTIVES,
    MARKERS,
    NOUNS,
    PREPOSITIONS,
    VERBS,
    make_sentence,
    marker_count,
    seeded_rng,
    unigram_surprisal,
    zscore,
)

PEREIRA_SUBJECTS = {"018": ("243sentences", "384sentences"), "199": ("243sentences", "384sentences"),
                    "215": ("243sentences",), "288": ("384sentences",)}
PEREIRA_PASSAGES = {"243sentences": 18, "384sentences": 24}
PEREIRA_CATEGORIES = ("beekeeping", "lighthouse", "orchard", "railway")
PEREIRA_VOXELS, PEREIRA_PLANTED = 10, 5
BLANK_STORIES = ("Aqua", "Boar", "Elvis", "HighSchool")
BLANK_SUBJECTS = ("061", "085")
BLANK_FROIS = ("01_LH_PostTemp", "02_LH_AntTemp", "07_RH_PostTemp", "08_RH_AntTemp")
BLANK_PLANTED_FROIS = ("01_LH_PostTemp", "02_LH_AntTemp")
WEHBE_SUBJECTS = ("F", "H", "I", "J", "K", "L", "M", "N")
# runs as in the real data: fixation at both ends (BLS trims 20 scans at the start and 15 at the end of every run)
WEHBE_RUNS, WEHBE_TRS_PER_RUN, WEHBE_LEAD_TRS, WEHBE_WORD_TRS = 4, 75, 20, 40
WEHBE_VOXELS, WEHBE_ROI = 12, 8
WEHBE_HRF = (0.5, 1.0, 0.8, 0.4)  # response to a TR's marker words 1..4 TRs later (the pipeline's FIR delays)
FUTRELL_STORIES, FUTRELL_SENTENCES, FUTRELL_READERS = 2, 6, 6
NOISE = 1.0


def pereira_design() -> dict:
    """Sentences and responses of the Pereira 2018 fixture (both experiments), as plain arrays.

    Passages have 3-4 sentences and one marker level (0-3) each, so the planted feature is constant within a
    passage (the context a model reads a sentence with cannot contradict it). Voxels 0..PLANTED-1 of each
    subject's list respond to the z-scored marker count; the rest are noise. Subjects who did not run an
    experiment have NaN there, as in Brain-Score's merged assembly.
    """
    rng = seeded_rng("pereira2018")
    rows = []
    for experiment, n_passages in PEREIRA_PASSAGES.items():
        levels = rng.permutation(np.arange(n_passages) % 4)
        stimulus_num = 0
        for p in range(n_passages):
            category = PEREIRA_CATEGORIES[p % len(PEREIRA_CATEGORIES)]
            n_sentences = 3 if (experiment == "243sentences" and p % 3 == 2) else 4
            for _ in range(n_sentences):
                sentence = make_sentence(rng, levels[p])
                rows.append({"experiment": experiment, "stimulus_num": stimulus_num, "sentence": sentence,
                             "passage_index": p + 1, "passage_label": f"{category.capitalize()}{p // 4 + 1}",
                             "passage_category": category})
                stimulus_num += 1
    feature = np.array([marker_count(r["sentence"]) for r in rows], dtype=float)
    experiments = np.array([r["experiment"] for r in rows])
    z = np.zeros(len(rows))
    for experiment in PEREIRA_PASSAGES:
        z[experiments == experiment] = zscore(feature[experiments == experiment])
    neuroids, columns, planted = [], [], []
    for subject, ran in PEREIRA_SUBJECTS.items():
        voxel_nums = np.sort(rng.choice(5000, size=PEREIRA_VOXELS, replace=False))
        weights = rng.uniform(0.8, 1.2, size=PEREIRA_VOXELS)
        for v, voxel_num in enumerate(voxel_nums):
            signal = weights[v] * z if v < PEREIRA_PLANTED else 0.0
            column = signal + NOISE * rng.standard_normal(len(rows))
            column[~np.isin(experiments, ran)] = np.nan
            columns.append(column)
            neuroids.append({"subject": subject, "voxel_num": int(voxel_num)})
            if v < PEREIRA_PLANTED:
                planted.append(f"{subject}.{voxel_num}")
    return {"presentation": rows, "neuroid": neuroids, "values": np.stack(columns, axis=1), "planted": planted,
            "feature": feature.tolist()}


def blank_design() -> dict:
    """Story fragments (one per TR, as Brain-Score paired them) and fROI responses of the Blank 2014 fixture.

    Each story is 10 sentences cut into fragments that end at each noun; the planted fROIs respond to the fragment's
    z-scored marker count, the others are noise."""
    rng = seeded_rng("blank2014")
    rows = []
    for story in BLANK_STORIES:
        timepoint = 0
        for sentence_num in range(10):
            words = make_sentence(rng, int(rng.integers(0, 4))).split()
            nouns = [i for i, w in enumerate(words) if w.strip(".").lower() in MARKERS + NOUNS]
            cuts = [0] + [i + 1 for i in nouns[:-1]] + [len(words)]  # a fragment ends at each noun
            for part, (start, end) in enumerate(zip(cuts[:-1], cuts[1:])):
                fragment = " ".join(words[start:end])
                timepoint += 2
                rows.append({"story": story, "stimulus": fragment, "sentence_number_in_story": sentence_num,
                             "part_number_in_sentence": part, "timepoint_value": timepoint,
                             "stimulus_id": f"{story}.{sentence_num}.{part}"})
    feature = np.array([marker_count(r["stimulus"]) for r in rows], dtype=float)
    z = zscore(feature)
    neuroids, columns, planted = [], [], []
    for subject in BLANK_SUBJECTS:
        for froi in BLANK_FROIS:
            signal = rng.uniform(0.8, 1.2) * z if froi in BLANK_PLANTED_FROIS else 0.0
            columns.append(signal + NOISE * rng.standard_normal(len(rows)))
            neuroids.append({"subject_id": subject, "fROI_area": froi})
            if froi in BLANK_PLANTED_FROIS:
                planted.append(f"{subject}.{froi}")
    return {"presentation": rows, "neuroid": neuroids, "values": np.stack(columns, axis=1), "planted": planted,
            "feature": feature.tolist()}


def wehbe_design() -> dict:
    """Words (0.5 s each, in 4 runs), scan times and per-subject voxel responses of the Wehbe 2014 fixture.

    Each run: WEHBE_LEAD_TRS scans of fixation, WEHBE_WORD_TRS scans of reading (4 words per 2 s scan), the rest
    fixation. Planted ROI voxels respond to the number of marker words read in each scan, 1-4 scans later
    (weights WEHBE_HRF); the other voxels are noise."""
    rng = seeded_rng("wehbe2014")
    n_trs = WEHBE_RUNS * WEHBE_TRS_PER_RUN
    times = np.arange(n_trs) * 2.0
    runs = np.repeat(np.arange(1, WEHBE_RUNS + 1), WEHBE_TRS_PER_RUN)
    words, onsets = [], []
    for run in range(WEHBE_RUNS):
        run_words = []
        while len(run_words) < WEHBE_WORD_TRS * 4:
            run_words += make_sentence(rng, int(rng.integers(0, 4))).split()
        run_words = run_words[:WEHBE_WORD_TRS * 4]
        start = (run * WEHBE_TRS_PER_RUN + WEHBE_LEAD_TRS) * 2.0
        words += run_words
        onsets += [start + 0.5 * i for i in range(len(run_words))]
    per_scan = np.zeros(n_trs)
    for word, onset in zip(words, onsets):
        per_scan[int(onset // 2.0)] += marker_count(word)
    drive = np.zeros(n_trs)
    for lag, weight in enumerate(WEHBE_HRF, 1):
        shifted = np.zeros(n_trs)
        shifted[lag:] = per_scan[:-lag]
        shifted[runs != np.roll(runs, lag)] = 0.0  # no carry-over across runs
        drive += weight * shifted
    z = zscore(drive)
    subjects, roi, planted = {}, {}, []
    for letter in WEHBE_SUBJECTS:
        roi_index = np.sort(rng.choice(WEHBE_VOXELS, size=WEHBE_ROI, replace=False))
        data = NOISE * rng.standard_normal((n_trs, WEHBE_VOXELS))
        for v in roi_index[: WEHBE_ROI // 2]:
            data[:, v] += rng.uniform(0.8, 1.2) * z
            planted.append(f"{letter}.{v}")
        subjects[letter] = data.astype(np.float32)
        roi[letter] = {"all": roi_index.astype(np.int64), "PostTemp": roi_index[:4].astype(np.int64)}
    return {"words": words, "onsets": onsets, "times": times, "runs": runs, "subjects": subjects, "roi": roi,
            "planted": planted, "feature": per_scan.tolist()}


def futrell_design() -> dict:
    """Natural Stories word list and per-reader self-paced reading times of the Futrell 2018 fixture.

    RT (ms) = 200 + 12 * characters + 40 * marker word + 15 * unigram surprisal (bits) + reader offset + noise;
    one reader skipped the second story (NaN there, as in the real data)."""
    rng = seeded_rng("futrell2018")
    tok = []
    for item in range(1, FUTRELL_STORIES + 1):
        words = []
        for _ in range(FUTRELL_SENTENCES):
            words += make_sentence(rng, int(rng.integers(0, 4))).split()
        tok += [{"word": w, "zone": z, "item": item} for z, w in enumerate(words, 1)]
    surprisal = unigram_surprisal([t["word"] for t in tok])
    readers = [f"A{hashlib.sha1(f'reader{i}'.encode()).hexdigest()[:12].upper()}" for i in range(FUTRELL_READERS)]
    rts = []
    for i, reader in enumerate(readers):
        offset = rng.normal(0, 40)
        for t in tok:
            if i == len(readers) - 1 and t["item"] == FUTRELL_STORIES:
                continue
            key = t["word"].lower().strip(".,")
            rt = (200 + 12 * len(key) + 40 * (key in MARKERS) + 15 * surprisal[key] + offset + rng.normal(0, 30))
            rts.append({"WorkerId": reader, "item": t["item"], "zone": t["zone"], "RT": int(round(min(max(rt, 101), 2999))),
                        "word": t["word"]})
    return {"tok": tok, "rts": rts, "readers": readers}


def all_texts() -> list[str]:
    """Every text of every fixture (the tokenizers' training corpus)."""
    texts = [r["sentence"] for r in pereira_design()["presentation"]]
    texts += [r["stimulus"] for r in blank_design()["presentation"]]
    texts.append(" ".join(wehbe_design()["words"]))
    texts.append(" ".join(t["word"] for t in futrell_design()["tok"]))
    return texts


# Brain-Score Language 2.3.0 assemblies beyond the paper's Pereira and Blank (tests/miniature/make_assemblies.py)
FUTRELL_ASSEMBLY_STORIES, FUTRELL_ASSEMBLY_SENTENCES, FUTRELL_ASSEMBLY_READERS = 2, 8, 6
FUTRELL_ASSEMBLY_RUN_ON = (2, 5)  # sentences (within each story) followed by one that starts lower-case
FEDORENKO_SUBJECTS = {1: 6, 2: 4, 3: 4}  # subject_UID -> electrodes (the real file: 5 subjects, 47/8/9/15/18)
FEDORENKO_PLANTED, FEDORENKO_SENTENCES, FEDORENKO_WORDS = 3, 16, 8
TUCKUTE_ASSEMBLY_SENTENCES = 60
TUCKUTE_TRAIN_SUBJECTS = (848, 853, 865, 875, 876)
_SENTENCE_END = (".", "?", "!", ".'", "?'", "!'", ";'")


def brainscore_sentence_numbers(words: list[str]) -> tuple[list[int], list[int]]:
    """``sentence_id`` (from 1) and ``word_within_sentence_id`` (from 1) as Brain-Score's Futrell2018 packaging
    defines them (brainscore_language/data/futrell2018/data_packaging.py): a word ending in sentence punctuation
    ends a sentence unless the next word is lower-case or the word is ``Mr.``; the count never restarts at a story
    boundary by itself; the corpus's last word always closes its sentence. Re-derived here so the fixture's
    coordinates are what that code would give for these words (the test reads them back with Brain-Score)."""
    sentence_ids, within_ids, sentence, within = [], [], 1, 0
    for i, word in enumerate(words):
        within += 1
        sentence_ids.append(sentence)
        within_ids.append(within)
        if word.endswith(_SENTENCE_END):
            if i + 1 < len(words):
                if not (words[i + 1].islower() or word == "Mr."):
                    sentence, within = sentence + 1, 0
            else:
                within = 0
    return sentence_ids, within_ids


def futrell_assembly_design() -> dict:
    """Natural Stories-like words and per-reader RTs for Brain-Score's ``Futrell2018`` assembly (presentation x
    subject, in (story, zone) order as its packaging sorts them).

    Some sentences are followed by one that starts lower-case (:data:`FUTRELL_ASSEMBLY_RUN_ON`): Brain-Score's rule
    does not start a new sentence there, a punctuation rule would, so the fixture tells the two apart. RT (ms) =
    200 + 12 * characters + 40 * marker word + 15 * unigram surprisal + reader offset + noise; the last reader
    skipped the second story (NaN there, as in the real data)."""
    rng = seeded_rng("futrell2018-assembly")
    words, stories, zones = [], [], []
    for story in range(1, FUTRELL_ASSEMBLY_STORIES + 1):
        story_words = []
        for s in range(FUTRELL_ASSEMBLY_SENTENCES):
            sentence = make_sentence(rng, int(rng.integers(0, 4))).split()
            if s - 1 in FUTRELL_ASSEMBLY_RUN_ON:
                sentence[0] = sentence[0].lower()
            story_words += sentence
        words += story_words
        stories += [story] * len(story_words)
        zones += list(range(1, len(story_words) + 1))
    sentence_ids, within_ids = brainscore_sentence_numbers(words)
    surprisal = unigram_surprisal(words)
    readers = [f"A{hashlib.sha1(f'assembly-reader{i}'.encode()).hexdigest()[:13].upper()}" for i in range(FUTRELL_ASSEMBLY_READERS)]
    rts = np.full((len(words), len(readers)), np.nan)
    for j in range(len(readers)):
        offset = rng.normal(0, 40)
        for i, word in enumerate(words):
            if j == len(readers) - 1 and stories[i] == FUTRELL_ASSEMBLY_STORIES:
                continue
            key = word.lower().strip(".,")
            rt = 200 + 12 * len(key) + 40 * (key in MARKERS) + 15 * surprisal[key] + offset + rng.normal(0, 30)
            rts[i, j] = float(round(min(max(rt, 101), 2999)))
    return {"words": words, "story_id": stories, "word_id": zones, "sentence_id": sentence_ids,
            "word_within_sentence_id": within_ids, "readers": readers, "values": rts,
            "correct": [int(c) for c in rng.integers(5, 7, len(readers))],
            "work_time": [int(t) for t in rng.integers(600, 2400, len(readers))],
            "surprisal": [surprisal[w.lower().strip(".,")] for w in words]}


def fedorenko_design() -> dict:
    """Eight-word sentences presented word by word and per-electrode responses of the Fedorenko 2016 fixture
    (Brain-Score's ``Fedorenko2016.language``: one presentation per word, electrodes pooled over subjects).

    Words come from the corpus's word lists, without punctuation (as the real stimuli). The first
    :data:`FEDORENKO_PLANTED` electrodes of each subject respond to the z-scored number of marker words read so far
    in the sentence (a feature a model reading the sentence's words in order carries); the others are noise."""
    rng = seeded_rng("fedorenko2016")
    rows = []
    for sentence_id in range(FEDORENKO_SENTENCES):
        slots = np.zeros(3, dtype=bool)
        slots[rng.choice(3, size=int(rng.integers(0, 4)), replace=False)] = True
        nouns = [str(rng.choice(MARKERS if m else NOUNS)) for m in slots]
        words = ["The", str(rng.choice(ADJECTIVES)), nouns[0], str(rng.choice(VERBS)), "the", nouns[1],
                 str(rng.choice(PREPOSITIONS)), nouns[2]]
        for word_num, word in enumerate(words):
            rows.append({"word": word, "word_num": word_num, "sentence_id": sentence_id})
    feature, running = [], 0
    for row in rows:
        running = (0 if row["word_num"] == 0 else running) + marker_count(row["word"])
        feature.append(running)
    z = zscore(feature)
    neuroids, columns, planted = [], [], []
    for subject, n_electrodes in FEDORENKO_SUBJECTS.items():
        for e in range(n_electrodes):
            electrode = len(neuroids)
            signal = rng.uniform(0.8, 1.2) * z if e < FEDORENKO_PLANTED else 0.0
            columns.append(signal + NOISE * rng.standard_normal(len(rows)))
            neuroids.append({"electrode": electrode, "subject_UID": subject})
            if e < FEDORENKO_PLANTED:
                planted.append(electrode)
    return {"presentation": rows, "neuroid": neuroids, "values": np.stack(columns, axis=1), "planted": planted,
            "feature": [float(f) for f in feature]}


def tuckute_assembly_design() -> dict:
    """Sentences and the one participant-averaged language-network response of Brain-Score's
    ``Tuckute2024.language`` fixture (one presentation per sentence, ``stimulus_id`` = the source's item_id).

    The response is the z-scored marker count plus noise (the assembly holds z-scored data)."""
    rng = seeded_rng("tuckute2024-assembly")
    item_ids = np.sort(rng.choice(2000, size=TUCKUTE_ASSEMBLY_SENTENCES, replace=False))
    sentences = [make_sentence(rng, int(rng.integers(0, 4))) for _ in item_ids]
    feature = np.array([marker_count(s) for s in sentences], dtype=float)
    values = zscore(zscore(feature) + 0.5 * NOISE * rng.standard_normal(len(sentences)))
    return {"item_id": [int(i) for i in item_ids], "sentence": sentences, "values": values[:, None],
            "feature": feature.tolist(), "planted": [1]}
