"""Officer questionnaires before and after training.

Takes the protocol's instruments and the randomised roster; gives one-time links, stored
answers (web or imported), scores, reliability, response rates and the analysis's pre/post tables.

- `instruments`: instrument files (`protocol/instruments/*.toml`) → frozen `Instrument`; private
  wording applied from the trial team's file.
- `scoring`: reverse coding, keyed answers, prorating → scale and subscale scores.
- `reliability`: Cronbach's alpha (Feldt CI), McDonald's omega (bootstrap CI), item statistics.
- `invitations`: one-time links (hashed tokens); open, save and resume, submit.
- `imports`: responses from paper or another platform, all or nothing.
- `scores`: the workspace's scores, the pre/post hand-off to the analysis, reliability.
- `flow`: response rates by arm, station and time point; the officers' CONSORT flow.
- `simulate`: SYNTHETIC responses for the demo.
"""

from typing import TYPE_CHECKING

from policetrial import lazy_names

if TYPE_CHECKING:
    from policetrial.survey.flow import ResponseFlow, response_flow
    from policetrial.survey.imports import (
        ResponseImport,
        ResponseProblem,
        import_response_frame,
        import_responses,
    )
    from policetrial.survey.instruments import (
        Instrument,
        Questionnaire,
        apply_wording,
        builtin_instruments,
        load_instrument,
        load_questionnaire,
        load_wording,
        parse_instrument,
    )
    from policetrial.survey.invitations import (
        InvitationBatch,
        InvitationRefusedError,
        OpenQuestionnaire,
        SubmissionReceipt,
        issue_invitations,
        open_invitation,
        save_answers,
        submit,
    )
    from policetrial.survey.reliability import (
        Alpha,
        Omega,
        cronbach_alpha,
        item_statistics,
        mcdonald_omega,
    )
    from policetrial.survey.roster import (
        CHARACTERISTICS,
        TIMES,
        officer_characteristics,
        survey_roster,
        workspace_questionnaire,
    )
    from policetrial.survey.scores import (
        PREPOST_COLUMNS,
        SurveyReliability,
        SurveyScores,
        load_responses,
        prepost_table,
        prepost_tables,
        responses_digest,
        scale_reliability,
        survey_reliability,
        survey_scores,
    )
    from policetrial.survey.scoring import InstrumentScores, recode_items, score_instrument
    from policetrial.survey.simulate import simulate_responses

_HOME = {
    name: module
    for module, names in {
        "flow": "ResponseFlow response_flow",
        "imports": "ResponseImport ResponseProblem import_response_frame import_responses",
        "instruments": (
            "Instrument Questionnaire apply_wording builtin_instruments load_instrument "
            "load_questionnaire load_wording parse_instrument"
        ),
        "invitations": (
            "InvitationBatch InvitationRefusedError OpenQuestionnaire SubmissionReceipt "
            "issue_invitations open_invitation save_answers submit"
        ),
        "reliability": "Alpha Omega cronbach_alpha item_statistics mcdonald_omega",
        "roster": (
            "CHARACTERISTICS TIMES officer_characteristics survey_roster workspace_questionnaire"
        ),
        "scores": (
            "PREPOST_COLUMNS SurveyReliability SurveyScores load_responses prepost_table "
            "prepost_tables responses_digest scale_reliability survey_reliability survey_scores"
        ),
        "scoring": "InstrumentScores recode_items score_instrument",
        "simulate": "simulate_responses",
    }.items()
    for name in names.split()
}

# Each name on first use: the report needs the scores, not the invitations, imports, simulation.
__getattr__ = lazy_names(__name__, _HOME, globals())

__all__ = [
    "CHARACTERISTICS", "PREPOST_COLUMNS", "TIMES", "Alpha", "Instrument", "InstrumentScores",
    "InvitationBatch", "InvitationRefusedError", "Omega", "OpenQuestionnaire", "Questionnaire",
    "ResponseFlow", "ResponseImport", "ResponseProblem", "SubmissionReceipt", "SurveyReliability",
    "SurveyScores", "apply_wording", "builtin_instruments", "cronbach_alpha",
    "import_response_frame", "import_responses", "issue_invitations", "item_statistics",
    "load_instrument", "load_questionnaire", "load_responses", "load_wording", "mcdonald_omega",
    "officer_characteristics", "open_invitation", "parse_instrument", "prepost_table",
    "prepost_tables", "recode_items", "response_flow", "responses_digest", "save_answers",
    "scale_reliability", "score_instrument", "simulate_responses", "submit", "survey_reliability",
    "survey_roster", "survey_scores", "workspace_questionnaire",
]  # fmt: skip
