#!/bin/bash
# Issue #31, round 4 (docs/aullmpp.md): candidate `structured`, today's default with the classifier reading the
# final hidden states of both structured tokens, [h_IT, h_CT] (`model.readout: structured`). Why: rounds 1–3 found
# that while the classifier reads only the CT, nothing asks the LLM to read the IT (a hard flip of every node state
# moves the trained models' probabilities by ≤ 0.4 points) and CCR's invariance target rewards not reading it.
#
#   benchmarks/aullmpp_round4.sh OUT DEFAULT_DATA DEMO_DATA ROUND1_OUT
exec "$(dirname "$0")/aullmpp_round.sh" "$@" structured model.readout=structured
