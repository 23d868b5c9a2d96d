"""reflow: HPC workflows as plain decorated Python functions, on Slurm or on a laptop."""

from reflow.definition.errors import (
    ConfigError,
    DefinitionError,
    FlowDefinitionError,
    ReflowError,
    StoreError,
    SubmissionError,
    SubmissionLimitError,
    UsageError,
)
from reflow.definition.flow import Flow
from reflow.definition.markers import Param, Result, RunDir
from reflow.run import Run
from reflow.workflow import Workflow

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DefinitionError",
    "Flow",
    "FlowDefinitionError",
    "Param",
    "ReflowError",
    "Result",
    "Run",
    "RunDir",
    "StoreError",
    "SubmissionError",
    "SubmissionLimitError",
    "UsageError",
    "Workflow",
    "__version__",
]
