"""fusionaudio: fine-grained audio captions from expert cues fused by an LLM.

Layers (arrows point down; a module imports only from layers below it)::

    cli, api      the command line; the Python API (``Pipeline``)
    dataset       exports of a finished run; report: the HTML report
    pipeline      stage graph, caching, run bookkeeping
    engine        how steps execute (sequential, local streaming)
    stages        what is computed (experts/), as batch callables
    backends      how a model runs (onnxruntime, ...)
    media         decoding, resampling, frames, probing, limits
    store         the run folder: shards, stage cache, assembly
    schema        the records that flow
"""

__version__ = "0.1.0"

from fusionaudio.api import Pipeline

__all__ = ["Pipeline", "__version__"]
