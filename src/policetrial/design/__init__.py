"""Design: sample size and power before the trial, analytic and by simulation.

Takes the trial's assumptions (stations, incidents per station, between-station CV, the
effect to detect) or a protocol and its workspace; gives power, the stations needed or the
detectable effect (`DesignResult`, `ProtocolDesign`), and simulated power of the very
analysis the trial will run.

- `power`, `outcomes`, `result`: the closed forms for rates, proportions and means;
- `simulate`: trials simulated as designed and analysed as planned;
- `trial`: the protocol's own design (its stations, strata and scheme set); `schemes`: the
  trial's own scheme set (sealed, or the protocol's before randomisation); `expected`: the
  counts its outcomes are expected to give before the data;
- `validity`: the simulation study showing that each shipped analysis keeps its size, with
  the designs and scenarios it simulates in `scenarios`.
"""

from policetrial.design.outcomes import design_effect, mean_design, proportion_design, rate_design
from policetrial.design.power import two_arm_power
from policetrial.design.result import DesignResult
from policetrial.design.simulate import CountScenario, SimulationResult, simulate_power
from policetrial.design.trial import ProtocolDesign, design_protocol, design_workspace
from policetrial.design.validity import ValidityStudy, validity_study

__all__ = [
    "CountScenario",
    "DesignResult",
    "ProtocolDesign",
    "SimulationResult",
    "ValidityStudy",
    "design_effect",
    "design_protocol",
    "design_workspace",
    "mean_design",
    "proportion_design",
    "rate_design",
    "simulate_power",
    "two_arm_power",
    "validity_study",
]
