"""Scenario configuration: schema, YAML loading, overrides."""

from mcalloc.config.loader import apply_override, config_hash, load_scenario, scenario_to_dict
from mcalloc.config.schema import (
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
    "load_scenario",
    "scenario_to_dict",
]
