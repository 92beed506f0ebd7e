"""Cluster resources of the model jobs, from each model's config entry (``n_params``, ``dtype``, ``gpus``,
``source``) and the attempt number; ``workflow/rules/common.smk`` calls these, so the arithmetic is tested here.

* ``run_model`` (the GPU job: a model's activations and surprisal for every dataset it reads): host memory about
  2.5 bytes per parameter in float16/bfloat16 and 4.5 in float32 (weights + overhead) plus 4 GB for activations;
  runtime 30 min + 10 min per billion parameters for each dataset; both times the attempt number, so a retry
  after an out-of-memory kill or a timeout asks for more. A half-precision model whose activations are not finite
  is reloaded in float32 *inside the same job* (``retry_float32_on_nonfinite``, default true;
  :class:`brainalign.models.session.ModelSession` releases the half-precision copy first): the first attempt reserves
  its own dtype's memory only (NaNs are rare), and a retry asks for at least the float32 memory, since that
  reload is what may have killed the first attempt.
* GPUs do not grow with the attempt: one more GPU only helps a model that is sharded with ``device_map`` (which
  loading does when a job sees more than one GPU), it does not help a host-memory kill or a timeout, and it
  lengthens the wait in the queue. A model too large for one GPU sets ``gpus: N`` in the config.
* Order: on a machine with fewer cores than jobs (a laptop, a 2-core CI runner) the largest model jobs start first
  (:func:`model_priority`, the longest-job-first rule: the run ends soon after its longest job instead of with
  it), and every ``prepare_model`` before any model job (:func:`prepare_priority`), since an untrained control
  waits for its base model's folder. A cluster runs them all at once and ignores the order.
* ``prepare_model`` (a Hub download, a link, a streamed delta sum, or a GGUF conversion) needs the network and
  little memory: it runs on the submit host (a local rule) unless ``cluster: {download_partition: NAME}`` makes
  it a small job on that partition (:func:`prepare_resources`).

Imports nothing heavy: the Snakefile imports it.
"""

from __future__ import annotations

from brainalign.schema import model_entry

#: host memory per parameter (bytes) when a model is loaded in this dtype: weights + overhead
BYTES_PER_PARAM = {"float32": 4.5, "float16": 2.5, "bfloat16": 2.5}
ACTIVATIONS_MB = 4000
DEFAULT_N_PARAMS = 1e9  # a model entry without n_params
HALF_DTYPES = ("float16", "bfloat16")
MATMUL_DTYPES = ("float32", "bfloat16")  # extraction.matmul_dtype (brainalign.models.precision)

DOWNLOAD_MEM_MB = 2000  # snapshot_download, links, copies
DELTA_MEM_MB = 8000  # apply_delta streams one tensor at a time into ~2 GB output files
DOWNLOAD_MB_PER_MIN = 600  # a slow 10 MB/s link
CONVERSION_OVERHEAD_MB = 2000


def _n_params(spec: dict) -> float:
    return float(spec.get("n_params") or DEFAULT_N_PARAMS)


def weights_mem_mb(n_params: float, dtype: str) -> float:
    """Host memory (MB) to hold a model of ``n_params`` parameters loaded in ``dtype``, plus activations."""
    return n_params * BYTES_PER_PARAM[dtype] / 1e6 + ACTIVATIONS_MB


def needs_float32_on_retry(spec: dict) -> bool:
    """Whether the job may reload the model in float32 (half-precision dtype and retry_float32_on_nonfinite)."""
    spec = model_entry(spec)
    return spec["dtype"] in HALF_DTYPES and bool(spec["retry_float32_on_nonfinite"])


def model_mem_mb(spec: dict, attempt: int = 1) -> int:
    """Memory (MB) of a job that loads the model: its dtype's need times ``attempt``; from the second attempt on,
    at least the float32 need when the job may reload in float32."""
    n_params = _n_params(spec)
    need = weights_mem_mb(n_params, model_entry(spec)["dtype"]) * attempt
    if attempt >= 2 and needs_float32_on_retry(spec):
        need = max(need, weights_mem_mb(n_params, "float32"))
    return int(need)


def model_runtime_min(spec: dict, attempt: int = 1, n_datasets: int = 1) -> int:
    """Minutes of a job that runs the model over ``n_datasets`` datasets: 30 + 10 per billion parameters per
    dataset, times ``attempt``."""
    return int((30 + 10 * _n_params(spec) / 1e9 * max(1, n_datasets)) * attempt)


def model_gpus(spec: dict, attempt: int = 1) -> int:
    """GPUs of a job that runs the model: its ``gpus`` entry (default 1), the same on every attempt."""
    return int(spec.get("gpus", 1))


def prepare_mem_mb(spec: dict) -> int:
    """Memory (MB) of prepare_model: little for a download, a link or a copy; a streamed delta sum a few GB; a
    GGUF conversion holds the de-quantised model and its plain copy, both float32."""
    if spec.get("source") == "gguf_package":
        return int(2 * 4 * _n_params(spec) / 1e6 + CONVERSION_OVERHEAD_MB)
    if spec.get("delta_of"):
        return DELTA_MEM_MB
    return DOWNLOAD_MEM_MB


def prepare_runtime_min(spec: dict) -> int:
    """Minutes of prepare_model: 30 + the download of two copies of the float16 weights (many repos hold both
    safetensors and PyTorch files) at :data:`DOWNLOAD_MB_PER_MIN`; twice that for delta weights (the sum reads
    the base and the delta and writes the result)."""
    download = 2 * 2 * _n_params(spec) / 1e6 / DOWNLOAD_MB_PER_MIN
    return int(30 + download * (2 if spec.get("delta_of") else 1))


def products_dtype(weights_dtype: str, matmul_dtype: str) -> str:
    """The dtype a model's matrix products run in: ``matmul_dtype`` for float32 weights, the weights' own otherwise
    (a half-precision model multiplies in its precision whatever ``extraction.matmul_dtype`` says)."""
    return matmul_dtype if weights_dtype == "float32" else weights_dtype


def download_partition(config: dict) -> str | None:
    """``cluster.download_partition``: where prepare_model runs as a job (None: on the submit host)."""
    return (config.get("cluster") or {}).get("download_partition") or None


def prepare_resources(spec: dict, config: dict) -> dict:
    """The resources of one model's prepare_model job (``slurm_partition`` only when it is a cluster job)."""
    out = {"mem_mb": prepare_mem_mb(spec), "runtime": prepare_runtime_min(spec)}
    if download_partition(config):
        out["slurm_partition"] = download_partition(config)
    return out


def model_priority(specs: dict, name: str) -> int:
    """Snakemake priority of ``name``'s model job: 1 for the smallest model (by ``n_params``) up to the number of
    models for the largest, ties in config order; every model job outranks the encoding jobs (priority 0)."""
    order = sorted(specs, key=lambda model: _n_params(specs[model]))  # a stable sort keeps the config order of ties
    return 1 + order.index(name)


def prepare_priority(specs: dict) -> int:
    """Snakemake priority of every ``prepare_model`` job: above every model job (:func:`model_priority`)."""
    return len(specs) + 1
