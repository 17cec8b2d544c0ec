#!/bin/bash
# Issue #31, round 2 (docs/aullmpp.md): candidate `sup`, today's default with R-AUGNN's node states trained on the
# clip's AU labels (the main loss, weight 1). Why: in round 1, R-AUGNN and CCR contributed nothing measurable.
#
#   benchmarks/aullmpp_round2.sh OUT DEFAULT_DATA DEMO_DATA ROUND1_OUT
exec "$(dirname "$0")/aullmpp_round.sh" "$@" sup model.graph.supervision=1.0
