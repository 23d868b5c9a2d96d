"""Definition: pictures of the task graph as text, Mermaid or Graphviz dot. Pure, no I/O."""

from __future__ import annotations

from reflow.definition.graph import Edge, Graph
from reflow.definition.spec import TaskSpec


def _label(spec: TaskSpec) -> str:
    return f"{spec.name}[]" if spec.is_array else spec.name


def _edge_label(edge: Edge) -> str:
    return edge.mode.value if edge.mode else "after"


def render_text(graph: Graph) -> str:
    """Tasks in topological order, each with its kind and the edges that feed it."""
    lines = [f"workflow {graph.name}: {len(graph.tasks)} tasks ([] marks an array task)"]
    for spec in graph.tasks:
        returns = f" -> {spec.returns}" if spec.returns is not None else ""
        lines.append(f"  {_label(spec)}{returns}")
        for edge in graph.incoming(spec.name):
            into = edge.param or "(order only)"
            lines.append(f"    {into} <- {edge.source} ({_edge_label(edge)})")
    return "\n".join(lines) + "\n"


# Words Mermaid reads as syntax where a node id stands. A task so named (with any number of
# trailing "_") gets one more "_", which keeps ids distinct: "end" -> "end_", "end_" -> "end__".
_MERMAID_WORDS = frozenset(
    {
        "end",
        "graph",
        "subgraph",
        "flowchart",
        "direction",
        "style",
        "class",
        "classDef",
        "click",
        "linkStyle",
        "call",
        "href",
        "default",
    }
)


def _mermaid_id(name: str) -> str:
    return f"{name}_" if name.rstrip("_") in _MERMAID_WORDS else name


def render_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart``; array tasks are drawn as stacked boxes."""
    lines = ["flowchart TD"]
    for spec in graph.tasks:
        shape = f'[["{spec.name} []"]]' if spec.is_array else f'["{spec.name}"]'
        lines.append(f"    {_mermaid_id(spec.name)}{shape}")
    for edge in graph.edges:
        arrow = "-.->" if edge.mode is None else "-->"
        source, target = _mermaid_id(edge.source), _mermaid_id(edge.target)
        lines.append(f"    {source} {arrow}|{_edge_label(edge)}| {target}")
    return "\n".join(lines) + "\n"


def render_dot(graph: Graph) -> str:
    """A Graphviz digraph; array tasks have a doubled border."""
    import json  # quoting for dot only; ``dag`` in text stays free of it

    lines = [f"digraph {json.dumps(graph.name)} {{", "    rankdir=TB;", "    node [shape=box];"]
    for spec in graph.tasks:
        extra = ", peripheries=2" if spec.is_array else ""
        lines.append(f"    {json.dumps(spec.name)} [label={json.dumps(_label(spec))}{extra}];")
    for edge in graph.edges:
        style = ", style=dashed" if edge.mode is None else ""
        lines.append(
            f"    {json.dumps(edge.source)} -> {json.dumps(edge.target)} "
            f"[label={json.dumps(_edge_label(edge))}{style}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


RENDERERS = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}
