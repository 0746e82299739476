"""Rehearsed drills: YAML playbooks run step by step against a snapshot, the live local chain or a
fork, judged against expectations, reported for regulators (JSON + self-contained HTML)."""

from custody.drills.catalogue import registry
from custody.drills.playbook import check_playbook, load_playbook
from custody.drills.runner import DrillOptions, DrillReport, run_drill

__all__ = ["DrillOptions", "DrillReport", "check_playbook", "load_playbook", "registry", "run_drill"]
