"""Diagrams: text, Mermaid and dot renderings of a graph, pinned by golden files."""

import io
from typing import Annotated

import pytest

from reflow import Result, Workflow
from reflow.definition.diagram import RENDERERS, render_dot, render_mermaid, render_text
from tests.flows import all_rules

SUFFIX = {"text": "txt", "mermaid": "mmd", "dot": "dot"}


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_all_rules_rendering_matches_golden(fmt, golden):
    golden(f"diagram/all_rules.{SUFFIX[fmt]}", RENDERERS[fmt](all_rules.wf.graph()))


def test_text_lists_tasks_in_order_with_incoming_edges_and_modes():
    text = render_text(all_rules.wf.graph())
    lines = text.splitlines()
    assert lines[0] == "workflow all_rules: 12 tasks ([] marks an array task)"
    assert "  parts[] -> str" in lines
    assert lines[lines.index("  parts[] -> str") + 1] == "    part <- split (flatten+fan-out)"
    assert "    (order only) <- total (after)" in lines
    assert text.endswith("\n")


def test_mermaid_draws_every_task_and_edge():
    graph = all_rules.wf.graph()
    text = render_mermaid(graph)
    assert text.startswith("flowchart TD\n")
    assert '    parts[["parts []"]]' in text
    assert '    files["files"]' in text
    for edge in graph.edges:
        label = edge.mode.value if edge.mode else "after"
        arrow = "-->" if edge.mode else "-.->"
        assert f"    {edge.source} {arrow}|{label}| {edge.target}\n" in text


def test_dot_draws_every_task_and_edge():
    graph = all_rules.wf.graph()
    text = render_dot(graph)
    assert text.startswith('digraph "all_rules" {\n')
    assert text.endswith("}\n")
    assert '"parts" [label="parts[]", peripheries=2];' in text
    assert '"total" -> "report" [label="after", style=dashed];' in text
    assert text.count(" -> ") == len(graph.edges)


def _keyword_flow() -> Workflow:
    wf = Workflow("keywords")

    @wf.job()
    def start() -> str:
        return ""

    @wf.job(name="end")
    def finish(x: Annotated[str, Result(step="start")]) -> str:
        return x

    @wf.job()
    def end_(x: Annotated[str, Result(step="end")]) -> str:
        return x

    @wf.job(name="style")
    def styled(x: Annotated[str, Result(step="end_")]) -> str:
        return x

    return wf


def test_mermaid_ids_avoid_mermaid_keywords_and_stay_distinct():
    text = render_mermaid(_keyword_flow().graph())
    assert text.splitlines() == [
        "flowchart TD",
        '    start["start"]',
        '    end_["end"]',
        '    end__["end_"]',
        '    style_["style"]',
        "    start -->|direct| end_",
        "    end_ -->|direct| end__",
        "    end__ -->|direct| style_",
    ]


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_dag_command_prints_the_rendering(fmt):
    out = io.StringIO()
    argv = ["dag"] if fmt == "text" else ["dag", "--format", fmt]
    assert all_rules.wf.cli(argv, out=out) == 0
    assert out.getvalue() == RENDERERS[fmt](all_rules.wf.graph())
