"""Definition layer: markers, task specs, flows, the graph, the CLI builder. Pure, no I/O."""
