"""A synthetic police force that follows the protocol, for the demo, tests and benchmarks.

Takes a protocol, a number of stations, a true effect and a seed; gives every extract of
`docs/data-formats.md` as CSV files shaped like a real force's (`synthesise_force`).

- `force`: stations, beats, officers and their postings, training sessions and attendance;
- `demand`: incidents with their tags, attending officers, persons, warning markers and
  Section 136 detentions;
- `synthesise`: all of it written to files, randomised the protocol's own way.
"""

from policetrial.synth.synthesise import SynthForce, synthesise_force

__all__ = ["SynthForce", "synthesise_force"]
