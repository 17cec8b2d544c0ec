#!/bin/bash
# Issue #31, round 3 (docs/aullmpp.md): candidate `hard`, today's default with CCR's AU flip stated outright
# (`model.ccr.flip: hard`, s → 1 if s < 0.5 else 0). Why: the trained default's latent node states sit within 0.07
# of 0.5, where the soft flip s → 1 − s changes the instruction token by < 1% and the prediction by ~1e-4 — the
# counterfactual never was one.
#
#   benchmarks/aullmpp_round3.sh OUT DEFAULT_DATA DEMO_DATA ROUND1_OUT
exec "$(dirname "$0")/aullmpp_round.sh" "$@" hard model.ccr.flip=hard
