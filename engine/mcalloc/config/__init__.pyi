"""Names of :mod:`mcalloc.config`, imported on first use (see ``__init__.py``)."""

from . import dependence_schema, loader, model_schema, optimize_schema, schema, sections
from .loader import apply_override, config_hash, load_scenario, scenario_to_dict
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
    "scenario_to_dict",
    "schema",
    "sections",
]
