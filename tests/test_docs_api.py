"""docs/api.md runs as written: every Python block, in order, in an empty folder (so the walkthrough cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.usefixtures("one_thread")
def test_the_api_walkthrough_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "walkthrough"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)
    # what the walkthrough shows is what it says
    assert namespace["run"].complete and namespace["run"].bundle is not None
    scores = namespace["scores"]
    assert {"seed", "au", "metric", "value", "ci_low", "ci_high"} <= set(scores.columns)
    assert scores.query("seed == 'mean' and au == 'avg' and metric == 'auc'")["ci_low"].notna().all()
    comparison = namespace["comparison"].to_frame()
    assert set(comparison["metric"]) >= {"f1_macro", "auc"} and comparison["p"].between(0, 1).all()
    table: pd.DataFrame = namespace["table"]
    assert list(table["status"]) == ["ok", "ok"]
    # The array and the folder it was read from are the same clip. Not bit-identical: the folder's JPEGs decode
    # straight to gray at reduced scale in the DCT domain (draft mode), the array is RGB resized from full size;
    # gray levels differ by about one, probabilities by well under 0.02.
    probs = table.filter(like="_prob").to_numpy()
    assert abs(probs[0] - probs[1]).max() < 0.02
    assert all(isinstance(files, list) and files for files in namespace["written"].values())
    assert namespace["report"].is_file()
