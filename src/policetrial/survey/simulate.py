"""SYNTHETIC questionnaire responses for invited officers, for the demo and for tests.

Every row this module makes has `mode = "synthetic"`, which stays with the stored
questionnaire and appears in every scored table, so synthetic answers can never pass for
real ones.

The model: each officer has a latent attitude :math:`\\eta` with a station effect
(:math:`\\eta_{pre} = u_s + e`, :math:`u_s \\sim N(0, \\sigma_s^2)`, :math:`e \\sim N(0, 1)`);
after training :math:`\\eta_{post} = \\rho\\,\\eta_{pre} + \\sqrt{1-\\rho^2}\\,e' + \\delta`
in the intervention arm (:math:`\\delta` = `effect`, in latent SD units; 0 in control).
Each subscale mixes the officer's :math:`\\eta` with a subscale-specific part; a rating item
cuts a noisy copy of it at four thresholds into codes 1..5 (reverse-keyed items are
answered the other way round); a scenario item is answered as keyed with probability
:math:`\\Phi(0.3 + 0.8 t)`, otherwise one of the other options at random.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import and_, select

from policetrial.errors import SurveyError
from policetrial.records import db
from policetrial.records.workspace import Workspace
from policetrial.survey.instruments import Instrument
from policetrial.survey.roster import TIMES, survey_roster, workspace_questionnaire

__all__ = ["simulate_responses"]

_CUTS = np.array([-1.6, -0.6, 0.3, 1.2])


def simulate_responses(
    workspace: Workspace,
    *,
    effect: float = 0.5,
    seed: int = 1,
    pre_share: float = 0.85,
    post_share: float = 0.6,
    item_missing: float = 0.02,
    station_sd: float = 0.3,
    stability: float = 0.6,
) -> pd.DataFrame:
    """Synthetic answers, in the `policetrial survey import` format, for invited officers.

    Officers invited for a time point (and not yet answered) respond with probability
    `pre_share` before and `post_share` after training; each answer is left blank with
    probability `item_missing`. `effect` shifts the latent attitude of intervention-arm
    officers after training (SD units). Returns the rows (mode "synthetic"); store them
    with `import_response_frame(workspace, rows, source="synthetic", mode="synthetic")`.
    """
    for name, value in (("pre_share", pre_share), ("post_share", post_share)):
        if not 0 <= value <= 1:
            raise SurveyError(f"{name} must be between 0 and 1, got {value}")
    if not 0 <= item_missing < 1:
        raise SurveyError(f"item_missing must be between 0 and 1, got {item_missing}")
    if not -1 < stability < 1:
        raise SurveyError(f"stability must be between -1 and 1, got {stability}")
    questionnaire = workspace_questionnaire(workspace)
    roster = survey_roster(workspace).set_index("officer_key")
    with workspace.engine.connect() as connection:
        invited = pd.DataFrame(
            connection.execute(
                select(db.survey_invitations.c.officer_key, db.survey_invitations.c.time).where(
                    and_(db.survey_invitations.c.status.in_(("issued", "started")))
                )
            ).all(),
            columns=["officer_key", "time"],
        )
        answered = {
            (r[0], r[1])
            for r in connection.execute(
                select(db.survey_submissions.c.officer_key, db.survey_submissions.c.time)
            )
        }
    if invited.empty:
        raise SurveyError("no open invitations; issue them first with `policetrial survey invite`")
    rng = np.random.default_rng(seed)
    keys = roster.index.to_numpy()
    stations = roster["station_id"].to_numpy()
    unique_stations, station_index = np.unique(stations, return_inverse=True)
    station_effect = rng.normal(0.0, station_sd, len(unique_stations))[station_index]
    eta_pre = station_effect + rng.normal(size=len(keys))
    # Every training arm (and every station of a stepped wedge) was trained.
    trained = (roster["arm"] != "control").to_numpy()
    eta_post = (
        stability * eta_pre
        + np.sqrt(1 - stability**2) * rng.normal(size=len(keys))
        + station_effect * (1 - stability)
        + effect * trained
    )
    latent = {"pre": eta_pre, "post": eta_post}
    share = {"pre": pre_share, "post": post_share}
    position = {k: i for i, k in enumerate(keys)}
    frames = []
    for time in TIMES:
        wanted = invited.loc[invited["time"] == time, "officer_key"]
        wanted = [k for k in dict.fromkeys(wanted) if k in position and (k, time) not in answered]
        if not wanted:
            continue
        chosen = [k for k in wanted if rng.random() < share[time]]
        if not chosen:
            continue
        eta = latent[time][[position[k] for k in chosen]]
        answers: dict[str, np.ndarray] = {}
        for instrument in questionnaire.instruments:
            answers.update(_answer(instrument, eta, rng))
        frame = pd.DataFrame(answers)
        blank = rng.random(frame.shape) < item_missing
        frame = frame.astype("Int64").mask(blank)
        frame.insert(0, "officer_key", chosen)
        frame.insert(1, "time", time)
        frame.insert(2, "mode", "synthetic")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["officer_key", "time", "mode", *questionnaire.item_ids])
    return pd.concat(frames, ignore_index=True)


def _answer(
    instrument: Instrument, eta: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    n = len(eta)
    trait = {
        name: 0.75 * eta + np.sqrt(1 - 0.75**2) * rng.normal(size=n)
        for name in instrument.subscales
    }
    for item in instrument.items:
        low, high = instrument.response_range(item)
        t = trait[item.subscale]
        if item.scoring == "keyed":
            # ndtr is the normal CDF (stats.norm.cdf without importing scipy.stats);
            # imported here, as only the synthetic answers need it (not the report).
            from scipy import special

            best = rng.random(n) < special.ndtr(0.3 + 0.8 * t)
            others = [c for c in range(low, high + 1) if c != item.key]
            out[item.id] = np.where(best, int(item.key or low), rng.choice(others, size=n))
            continue
        offset = rng.normal(0.0, 0.3)
        noisy = 0.8 * t + 0.6 * rng.normal(size=n) + offset
        levels = high - low + 1
        cuts = np.quantile(_CUTS, np.linspace(0, 1, levels - 1)) if levels != 5 else _CUTS
        code = low + np.searchsorted(cuts, noisy)
        out[item.id] = (low + high - code) if item.reverse else code
    return out
