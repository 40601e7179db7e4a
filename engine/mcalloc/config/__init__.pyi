"""Names of :mod:`mcalloc.config`, imported on first use (see ``__init__.py``)."""

from . import dependence_schema, loader, model_schema, optimize_schema, overrides, schema, sections, yaml_source
from .loader import config_hash, load_scenario, scenario_to_dict
from .overrides import apply_override
from .schema import (
    AssetConfig,
    ConstraintsConfig,
    DataConfig,
    DependenceConfig,
    MarginalParams,
    MarginalsConfig,
    MinCvarObjective,
    MinVarianceObjective,
    ModelConfig,
    Objective,
    OptimizeConfig,
    OutputConfig,
    PortfolioConfig,
    Scenario,
    SimulationConfig,
)

__all__ = [
    "AssetConfig",
    "ConstraintsConfig",
    "DataConfig",
    "DependenceConfig",
    "MarginalParams",
    "MarginalsConfig",
    "MinCvarObjective",
    "MinVarianceObjective",
    "ModelConfig",
    "Objective",
    "OptimizeConfig",
    "OutputConfig",
    "PortfolioConfig",
    "Scenario",
    "SimulationConfig",
    "apply_override",
    "config_hash",
    "dependence_schema",
    "load_scenario",
    "loader",
    "model_schema",
    "optimize_schema",
    "overrides",
    "scenario_to_dict",
    "schema",
    "sections",
    "yaml_source",
]
